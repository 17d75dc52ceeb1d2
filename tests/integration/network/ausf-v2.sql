-- SPDX-License-Identifier: LGPL-2.1-or-later
-- The AUSF's SQLite store as cellprov-ausf made it at schema version 2, before
-- the schema_version table and sealed keys: test-provision.py's devices,
-- by sqlite3 .dump, with the PRAGMA user_version the dump leaves out.
-- test-store.py checks that the current cellprov-ausf migrates it keeping
-- every subscriber and binding.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE IF NOT EXISTS "subscribers" ( supi TEXT PRIMARY KEY, device_id TEXT NOT NULL, companion TEXT NOT NULL, generation INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL, UNIQUE (device_id, companion));
INSERT INTO subscribers VALUES('001010000000001','7dd7351b78562116e2fe0335dfe5f71c','001010000009001',2,1796437082,1796437083);
INSERT INTO subscribers VALUES('001010000000002','4bbba6418e377ad379a5819cdd873a9e','001010000009001',1,1796437082,1796437082);
INSERT INTO subscribers VALUES('001010000000003','0e20ec5d6ec7275aaf5b9f9ac55efe23','001010000009001',1,1796437082,1796437082);
CREATE TABLE keysets ( supi TEXT NOT NULL REFERENCES "subscribers"(supi) ON DELETE CASCADE, generation INTEGER NOT NULL, k_usim TEXT NOT NULL, opc TEXT NOT NULL, sqn TEXT NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (supi, generation));
INSERT INTO keysets VALUES('001010000000001',2,'ca66b18e0a07438e8085bc317e1cb078','f2d452e5080335e0f1ab704447651a2a','000000000000',1796437082);
INSERT INTO keysets VALUES('001010000000002',1,'5e5ecd41766a45e6632e290011d60ea8','f51d1ae3f92a82536ed4c3b313265eab','000000000000',1796437082);
INSERT INTO keysets VALUES('001010000000003',1,'11ad753e9219f4c705836158fe27a73a','84c2cb3c4e18c6b2d64f61234f7651b6','000000000000',1796437082);
COMMIT;
PRAGMA user_version=2;
