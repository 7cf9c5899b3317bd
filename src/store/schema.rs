// One schema for both backends; the migrations under migrations/{sqlite,postgres} create it.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        middle_name -> Nullable<Text>,
        nickname -> Nullable<Text>,
        profile -> Nullable<Text>,
        picture -> Nullable<Text>,
        website -> Nullable<Text>,
        email -> Nullable<Text>,
        email_verified -> Bool,
        gender -> Nullable<Text>,
        birthdate -> Nullable<Text>,
        zoneinfo -> Nullable<Text>,
        locale -> Nullable<Text>,
        phone_number -> Nullable<Text>,
        phone_number_verified -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        credentials_changed_at -> BigInt,
        address -> Nullable<Text>,
        is_admin -> Bool,
        disabled_at -> Nullable<BigInt>,
        username_key -> Text,
        mfa_required -> Bool,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        token_endpoint_auth_method -> Text,
        application_type -> Text,
        grant_types -> Text,
        response_types -> Text,
        scope -> Nullable<Text>,
        metadata -> Text,
        registration_token_hash -> Nullable<Text>,
        created_at -> BigInt,
        secret_ciphertext -> Nullable<Text>,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        pkce_required -> Bool,
        resources -> Nullable<Text>,
        registered_dynamically -> Bool,
        backchannel_logout_uri -> Nullable<Text>,
        backchannel_logout_session_required -> Bool,
        frontchannel_logout_uri -> Nullable<Text>,
        frontchannel_logout_session_required -> Bool,
        first_party -> Bool,
        require_mfa -> Bool,
        access_token_format -> Text,
    }
}

diesel::table! {
    client_redirect_uris (client_id, kind, uri) {
        client_id -> Text,
        kind -> Text,
        uri -> Text,
        position -> Integer,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        session_id -> Nullable<Text>,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        auth_time -> BigInt,
        nonce -> Nullable<Text>,
        acr -> Nullable<Text>,
        amr -> Nullable<Text>,
        claims -> Nullable<Text>,
        expires_at -> BigInt,
        resources -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        redirect_uri_sent -> Bool,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        code_challenge_method -> Nullable<Text>,
        session_id -> Nullable<Text>,
        auth_time -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        acr -> Nullable<Text>,
        claims -> Nullable<Text>,
        amr -> Nullable<Text>,
        resources -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        successor_hash -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    opaque_access_tokens (token_hash) {
        token_hash -> Text,
        jti -> Text,
        client_id -> Text,
        grant_id -> Nullable<Text>,
        subject -> Text,
        scope -> Text,
        audience -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        auth_time -> Nullable<BigInt>,
        acr -> Nullable<Text>,
        amr -> Nullable<Text>,
        groups -> Nullable<Text>,
        jkt -> Nullable<Text>,
        act -> Nullable<Text>,
        exchanged_from -> Nullable<Text>,
    }
}

diesel::table! {
    client_assertion_jtis (jti_hash) {
        jti_hash -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    instance_facts (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
        claims -> Text,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        generation -> Integer,
        private_key -> Binary,
        created_at -> BigInt,
        activates_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    browser_sessions (sid) {
        sid -> Text,
        user_id -> Text,
        store_key -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        ended_at -> Nullable<BigInt>,
        user_agent -> Nullable<Text>,
        ip_address -> Nullable<Text>,
    }
}

diesel::table! {
    logout_deliveries (id) {
        id -> Text,
        client_id -> Text,
        sid -> Text,
        subject -> Text,
        created_at -> BigInt,
        next_attempt_at -> BigInt,
        attempts -> Integer,
        delivered_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        address -> Nullable<Text>,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    totp_credentials (user_id) {
        user_id -> Text,
        sealed_secret -> Text,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        last_used_step -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        credential_id -> Text,
        name -> Text,
        passkey -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        backup_eligible -> Bool,
        backed_up -> Bool,
        user_verified -> Bool,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        name -> Text,
        name_key -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        added_at -> BigInt,
    }
}

diesel::table! {
    action_links (token_hash) {
        token_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        email -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_by -> Nullable<Text>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        kind -> Text,
        recipient_domain -> Text,
        sealed_message -> Nullable<Text>,
        created_at -> BigInt,
        next_attempt_at -> BigInt,
        attempts -> Integer,
        sent_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    pending_signups (token_hash) {
        token_hash -> Text,
        sealed_registration -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    upstream_identities (issuer, subject) {
        issuer -> Text,
        subject -> Text,
        provider -> Text,
        user_id -> Nullable<Text>,
        email -> Nullable<Text>,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        unlinked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        counter_key -> Text,
        at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    browser_sessions,
    login_failures,
    logout_deliveries,
    mail_outbox,
    users,
    clients,
    client_redirect_uris,
    grants,
    authorization_codes,
    refresh_tokens,
    consents,
    signing_keys,
    revoked_access_tokens,
    opaque_access_tokens,
    client_assertion_jtis,
    instance_facts,
    totp_credentials,
    recovery_codes,
    passkeys,
    groups,
    group_members,
    action_links,
    pending_signups,
    upstream_identities,
);

diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(grants -> users (user_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
