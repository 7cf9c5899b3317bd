-- Groups (issue 23, part 5): named sets of users whose names the `groups` scope releases
-- as the `groups` claim. `name` is kept as the administrator wrote it; `name_key` is the
-- name trimmed and lower-cased (`domain::GroupName::key`, the rule of usernames), and is
-- unique: "Admins" and "admins" are one group, so no app can be misled by a look-alike.
CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Who is in which group. A membership goes with its group and with its user.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
-- A user's groups (the claim, on the token, userinfo and introspection paths): the
-- primary key serves "members of a group", this one "groups of a user".
CREATE INDEX group_members_user_id ON group_members (user_id, group_id);
