-- Room on each page for the updates that follow an insert (issue 16).
--
-- A push's row in push_log and domain_usage_pushes is inserted when its request is folded and updated when its
-- outcome is, usually by a later step of the projection daemon; every delivered or failed push updates its device's
-- row in devices (last_push_at, last_error_at). None of these updates changes an indexed column, so PostgreSQL could
-- make each a heap-only tuple (HOT): the new version on the same page, no index entry, reclaimed by the page's own
-- pruning. It can only when the page has room, and with the default fillfactor of 100 the pages are full by the time
-- the update comes: in `./bench --mix steady` 18 % of push_log's and 19 % of domain_usage_pushes' updates were HOT,
-- 46 % of devices'; every other update wrote a new entry into each of the table's indexes (three for push_log) and
-- left a dead tuple for vacuum. A fillfactor leaves that room in every page written from now on (existing pages keep
-- their layout until they are rewritten).

alter table push_log set (fillfactor = 80);
alter table domain_usage_pushes set (fillfactor = 80);
alter table devices set (fillfactor = 80);
