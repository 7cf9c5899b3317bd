//! A user's second factors, as administrators see and reset them: kinds, names and
//! times, never a secret.

use serde_json::json;

use super::{Admin, AdminResult};
use crate::store::{AdminChange, EndedSessions, FactorSummary};

impl Admin<'_> {
    /// The user's second factors.
    pub fn second_factors(&self, user_id: &str) -> AdminResult<FactorSummary> {
        self.user(user_id)?;
        Ok(self.store.factor_summary(user_id)?)
    }

    /// Removes the user's second factors (one-time code authenticator, recovery codes,
    /// passkeys) and ends every session and grant of the user, in one transaction with
    /// its audit event: whoever signed in with a factor that is gone is signed out. The
    /// user enrols again at the next sign-in.
    pub fn reset_second_factors(&self, user_id: &str) -> AdminResult<EndedSessions> {
        let had = self.second_factors(user_id)?;
        let event = self.event(
            "user.second_factors_reset",
            user_id,
            Some(json!({
                "totp": had.totp.is_some(),
                "passkeys": had.passkeys.len(),
                "recovery_codes_left": had.recovery_codes_left,
            })),
        );
        self.audited(AdminChange::ResetSecondFactors(user_id), &event, "user")
    }
}
