"""Pure domain rules of Trackdéchets: BSD kinds, identifiers, waste codes. No I/O here."""
