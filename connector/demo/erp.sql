-- A tiny ERP table of waste pickups, as a garage's software would keep it (SQLite dialect).
CREATE TABLE enlevements (
    id INTEGER PRIMARY KEY,
    numero TEXT NOT NULL UNIQUE,
    date_enlevement TEXT NOT NULL,
    code_dechet TEXT NOT NULL,
    libelle TEXT NOT NULL,
    poids_kg REAL NOT NULL,
    etat TEXT NOT NULL,
    conditionnement TEXT NOT NULL,
    nb_colis INTEGER NOT NULL,
    code_traitement TEXT NOT NULL,
    cap TEXT,
    updated_at TEXT NOT NULL,
    td_id TEXT,
    td_numero TEXT,
    td_statut TEXT,
    td_erreur TEXT
);
CREATE INDEX ix_enlevements_updated_at ON enlevements (updated_at);
INSERT INTO enlevements (numero, date_enlevement, code_dechet, libelle, poids_kg, etat, conditionnement, nb_colis, code_traitement, cap, updated_at) VALUES
 ('ENL-1001', '2026-03-02', '13 02 05*', 'Huiles de vidange', 980.0, 'liquide', 'FUT', 5, 'R 9', 'CAP-2026-0100', '2026-03-02 09:00:00'),
 ('ENL-1002', '2026-03-02', '16 01 07*', 'Filtres à huile usagés', 120.5, 'solide', 'GRV', 1, 'R 13', 'CAP-2026-0101', '2026-03-02 09:05:00'),
 ('ENL-1003', '2026-03-03', '16 06 01*', 'Batteries plomb-acide', 650.0, 'solide', 'GRV', 2, 'R 4', 'CAP-2026-0102', '2026-03-03 14:30:00'),
 ('ENL-1004', '2026-03-04', '20 01 21*', 'Tubes fluorescents', -3.0, 'solide', 'FUT', 1, 'R 4', 'CAP-2026-0103', '2026-03-04 08:10:00');
