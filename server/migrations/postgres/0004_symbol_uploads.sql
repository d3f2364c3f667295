-- How many symbol uploads the deployment has taken: every server process compares
-- it with the count it saw last and forgets the symbol files it remembers as
-- missing when it moved (an upload through one process cannot reach the caches
-- of the others).
CREATE TABLE symbol_uploads (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    uploads BIGINT NOT NULL
);
INSERT INTO symbol_uploads (id, uploads) VALUES (1, 0);
