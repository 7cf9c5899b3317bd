-- Instances older than `2026-12-05-000009_username_key` do not know `users.username_key`
-- and insert users without it. During a rolling upgrade they share the database with new
-- instances, and the column's NOT NULL would refuse every user they create. This trigger
-- keys such a row instead (a BEFORE trigger runs before NOT NULL is checked). New
-- instances always set the key themselves (`domain::UsernameKey`), so it never acts for
-- them; once no old instance is left it only costs a NULL test per new user.
--
-- The key it gives is the one `UsernameKey` gives wherever SQL can compute that exactly:
-- `UsernameKey` trims Unicode white space and applies Unicode's full lower-case mapping
-- (`str::to_lowercase`, with its context rule for a final sigma). For an ASCII name that is
-- trimming ASCII white space and lower() under the "C" collation, which folds A-Z and
-- nothing else whatever the database's locale (under a Turkish one `I` would become `ı`).
-- For any other name, PostgreSQL's lower() follows the database's collation (libc's
-- per-character mapping, ICU's, or none under "C") and can differ from Rust's: a key that
-- differs is one nobody can sign in by, with nothing to notice it. So such a row gets the
-- mark the migration `username_key` used, its id and '#UNSETTLED' (a key no name folds
-- to): nobody signs in by it until the store keys it in Rust, at the next start of a
-- new instance or `portcullis migrate` (`settle_username_keys`; README, "Usernames"). The
-- old instances find it by its exact name meanwhile, as they always did.
--
-- A name that folds like an existing one breaks the unique index, and the old instance
-- answers as it always did for a taken name: case-insensitive uniqueness holds for it too.
CREATE FUNCTION users_fill_username_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.username_key IS NULL THEN
        IF octet_length(NEW.username) = length(NEW.username) THEN
            NEW.username_key := lower(btrim(NEW.username, E' \t\n\x0B\f\r') COLLATE "C");
        ELSE
            NEW.username_key := NEW.id || '#UNSETTLED';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_fill_username_key
    BEFORE INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_fill_username_key();
