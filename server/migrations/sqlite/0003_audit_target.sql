-- Deleting a report renames its id in the audit log to a pseudonym: find it fast.
CREATE INDEX audit_target ON audit_log (target);
