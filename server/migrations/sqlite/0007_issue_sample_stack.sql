-- An issue's sample stack: the crashing thread of its latest processed report as
-- text (frames only: module, function, source file name and line; no memory, no
-- register, no annotation), kept when its reports are deleted (the tombstone).
ALTER TABLE issues ADD COLUMN sample_stack TEXT;
