-- The mail outbox (issue 23): every mail is queued here in the transaction of the change
-- that sends it, and delivered by whichever instance claims it first (a lease on
-- `next_attempt_at`, as the back-channel logout outbox). The message (recipient, kind,
-- the single-use link) is sealed under the key-encryption key (context "mail:{id}"),
-- and cleared once sent or given up: a database dump alone holds no usable link.
-- `recipient_domain` and `kind` are in the clear for the operator's logs.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    recipient_domain TEXT NOT NULL,
    sealed_message TEXT,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
