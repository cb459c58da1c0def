-- Room on each page of the delivery queue for its lease renewals (issue 16).
--
-- A dispatcher renews the claims it holds every third of a lease (claimed_until, in no index), which rewrites every
-- row it holds: under a backlog, thousands of rows a renewal (87,294 rows in 13 renewals in one `./bench --mix
-- steady` run, 227 ms a call). Such an update can be heap-only (HOT: the new version on the same page, no index
-- entry) only when the page has room, and a queue filled by inserts has none: 21 % of push_queue's updates were HOT,
-- so most renewals wrote a new entry into each of its four indexes and left a dead tuple for vacuum. As in 0011, a
-- fifth of each page written from now on is left free.

alter table push_queue set (fillfactor = 80);
