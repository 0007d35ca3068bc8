CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE providers (
  arn TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE roles (
  name_key TEXT PRIMARY KEY,
  role_id  TEXT NOT NULL UNIQUE,
  path     TEXT NOT NULL,
  doc      TEXT NOT NULL
);
CREATE TABLE role_policies (
  role_key TEXT NOT NULL REFERENCES roles(name_key) ON DELETE CASCADE,
  name     TEXT NOT NULL,
  document TEXT NOT NULL,
  PRIMARY KEY (role_key, name)
);
CREATE TABLE policies (
  arn      TEXT PRIMARY KEY,
  name_key TEXT NOT NULL UNIQUE,
  path     TEXT NOT NULL,
  doc      TEXT NOT NULL
);
CREATE TABLE role_attachments (
  role_key   TEXT NOT NULL REFERENCES roles(name_key) ON DELETE CASCADE,
  policy_arn TEXT NOT NULL REFERENCES policies(arn),
  PRIMARY KEY (role_key, policy_arn)
);
CREATE INDEX role_attachments_policy ON role_attachments(policy_arn);
CREATE TABLE access_keys (
  id  TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE key_material (
  purpose TEXT NOT NULL,
  id      TEXT NOT NULL,
  doc     TEXT NOT NULL,
  PRIMARY KEY (purpose, id)
);
