//! Cognito and STS in memory: identities in a set, credentials that differ on each issue.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::clock::Clock;
use crate::model::session::{Credentials, QueueRef};
use crate::ports::IdentityProvider;
use crate::ports::{PortError, PortErrorKind};

/// Identities in a set; credentials are counters so each issue differs.
pub struct MemoryIdentities {
    clock: Arc<dyn Clock>,
    credential_seconds: u64,
    /// Identity id → the developer login it was created with.
    identities: Mutex<HashMap<String, String>>,
    issued: AtomicU64,
    lookups: AtomicU64,
    fail_credentials: AtomicBool,
    delete_batches: Mutex<Vec<usize>>,
    unprocessed_once: Mutex<HashSet<String>>,
    fail_deletes: AtomicBool,
}

impl MemoryIdentities {
    /// Credentials issued by this provider last `credential_seconds` from the clock's now.
    pub fn new(clock: Arc<dyn Clock>, credential_seconds: u64) -> Self {
        Self {
            clock,
            credential_seconds,
            identities: Mutex::default(),
            issued: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            fail_credentials: AtomicBool::new(false),
            delete_batches: Mutex::default(),
            unprocessed_once: Mutex::default(),
            fail_deletes: AtomicBool::new(false),
        }
    }

    /// The next delete call that names `identity_id` reports it unprocessed (as Cognito does
    /// under load) instead of deleting it.
    pub fn leave_unprocessed_once(&self, identity_id: &str) {
        self.unprocessed_once
            .lock()
            .unwrap()
            .insert(identity_id.to_string());
    }

    /// Makes every delete call fail outright.
    pub fn fail_deletes(&self, fail: bool) {
        self.fail_deletes.store(fail, Ordering::SeqCst);
    }

    /// How many ids each delete call carried, in call order.
    pub fn delete_batches(&self) -> Vec<usize> {
        self.delete_batches.lock().unwrap().clone()
    }

    /// Makes every credentials call fail, to test clean-up after a failed create.
    pub fn fail_credentials(&self, fail: bool) {
        self.fail_credentials.store(fail, Ordering::SeqCst);
    }

    /// Whether the identity exists.
    pub fn exists(&self, identity_id: &str) -> bool {
        self.identities.lock().unwrap().contains_key(identity_id)
    }

    /// How many credentials calls had to look the developer login up (no login given).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Number of identities.
    pub fn count(&self) -> usize {
        self.identities.lock().unwrap().len()
    }
}

#[async_trait]
impl IdentityProvider for MemoryIdentities {
    async fn create_identity(&self, login: &str) -> Result<String, PortError> {
        let number = self.issued.fetch_add(1, Ordering::SeqCst);
        let id = format!("memory:identity-{number}");
        self.identities
            .lock()
            .unwrap()
            .insert(id.clone(), login.to_string());
        Ok(id)
    }

    async fn credentials(
        &self,
        identity_id: &str,
        login: Option<&str>,
        _queue: &QueueRef,
        _role_session_name: &str,
    ) -> Result<Credentials, PortError> {
        if login.is_none() {
            self.lookups.fetch_add(1, Ordering::SeqCst);
        }
        let known = self.identities.lock().unwrap().get(identity_id).cloned();
        // As Cognito: a login that is not the identity's own gets no token for it.
        let matches = known.is_some_and(|own| login.is_none_or(|given| given == own));
        if self.fail_credentials.load(Ordering::SeqCst) || !matches {
            return Err(PortError::new(
                PortErrorKind::Other,
                "credentials",
                identity_id,
                "refused",
            ));
        }
        let number = self.issued.fetch_add(1, Ordering::SeqCst);
        Ok(Credentials {
            access_key: format!("MEMORYKEY{number}"),
            secret_key: format!("memory-secret-{number}"),
            session_token: format!("memory-token-{number}"),
            expires: self.clock.now() + self.credential_seconds,
        })
    }

    async fn delete_identities(&self, identity_ids: &[String]) -> Result<Vec<String>, PortError> {
        self.delete_batches.lock().unwrap().push(identity_ids.len());
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "Cognito DeleteIdentities",
                format!("{} identities", identity_ids.len()),
                "injected failure",
            ));
        }
        let mut unprocessed_once = self.unprocessed_once.lock().unwrap();
        let mut identities = self.identities.lock().unwrap();
        let mut unprocessed = Vec::new();
        for id in identity_ids {
            if unprocessed_once.remove(id) {
                unprocessed.push(id.clone());
            } else {
                identities.remove(id);
            }
        }
        Ok(unprocessed)
    }
}
