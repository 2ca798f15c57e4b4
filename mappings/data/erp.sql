-- Sample ERP tables (SQLite dialect) the demo loads: pickups of hazardous waste and their packagings.
CREATE TABLE enlevements (
    id INTEGER PRIMARY KEY,
    n_bon TEXT NOT NULL UNIQUE,
    date_enlevement TEXT NOT NULL,
    siret_producteur TEXT NOT NULL,
    code_dechet TEXT NOT NULL,
    designation TEXT NOT NULL,
    poids_kg REAL NOT NULL,
    pesee TEXT NOT NULL,
    etat_physique TEXT NOT NULL,
    soumis_adr INTEGER NOT NULL,
    mention_adr TEXT,
    code_traitement TEXT NOT NULL,
    cap TEXT,
    updated_at TEXT NOT NULL,
    td_id TEXT,
    td_numero TEXT,
    td_statut TEXT,
    td_erreur TEXT
);
CREATE INDEX enlevements_updated_at ON enlevements (updated_at);
CREATE TABLE conditionnements (
    id INTEGER PRIMARY KEY,
    bon_id INTEGER NOT NULL REFERENCES enlevements (id),
    type TEXT NOT NULL,
    nombre INTEGER NOT NULL,
    precision_autre TEXT
);
INSERT INTO enlevements (id, n_bon, date_enlevement, siret_producteur, code_dechet, designation, poids_kg, pesee, etat_physique, soumis_adr, mention_adr, code_traitement, cap, updated_at) VALUES
 (1, 'ERP-2026-000101', '2026-03-02 08:00:00', '85243162000123', '130205*', 'Huiles moteur usagées', 840.0, 'REAL', 'liquide', 1, 'UN 1202 Gazole, 3, III', 'R9', 'CAP-2026-0042', '2026-03-02 08:05:00'),
 (2, 'ERP-2026-000102', '2026-03-02 10:30:00', '85243162000123', '160601*', 'Batteries au plomb', 410.5, 'ESTIMATED', 'solide', 1, 'UN 2794 Accumulateurs électriques remplis d''électrolyte liquide acide, 8, (E)', 'R4', 'CAP-2026-0045', '2026-03-02 10:31:00'),
 (3, 'ERP-2026-000103', '2026-03-03 14:15:00', '85243162000123', '080111*', 'Déchets de peintures et vernis', 95.0, 'ESTIMATED', 'pâteux', 0, NULL, 'D10', 'CAP-2026-0046', '2026-03-03 14:20:00');
INSERT INTO conditionnements (bon_id, type, nombre, precision_autre) VALUES
 (1, 'FUT', 4, NULL),
 (2, 'GRV', 1, NULL),
 (3, 'FUT', 2, NULL),
 (3, 'AUTRE', 1, 'Seaux métalliques fermés');
