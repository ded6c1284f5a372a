//! Lambda's async invoke in memory: invocations recorded instead of run.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::PortError;
use crate::ports::{AsyncFunction, Invoker};

/// Records async invocations instead of running them.
#[derive(Debug, Default)]
pub struct RecordingInvoker {
    invocations: Mutex<Vec<(AsyncFunction, Vec<u8>)>>,
    dead_letters: Mutex<Vec<(AsyncFunction, Vec<u8>, String)>>,
    refuse_dead_letters: Mutex<bool>,
}

impl RecordingInvoker {
    /// Makes every dead-lettering fail (the queue unreachable) until called with `false`.
    pub fn refuse_dead_letters(&self, refuse: bool) {
        *self.refuse_dead_letters.lock().unwrap() = refuse;
    }

    /// The payloads handed to `function`, in order.
    pub fn payloads(&self, function: AsyncFunction) -> Vec<Vec<u8>> {
        let invocations = self.invocations.lock().unwrap();
        invocations
            .iter()
            .filter(|(called, _)| *called == function)
            .map(|(_, payload)| payload.clone())
            .collect()
    }

    /// The payloads dead-lettered for `function`, in order, with their reasons.
    pub fn dead_letters(&self, function: AsyncFunction) -> Vec<(Vec<u8>, String)> {
        let letters = self.dead_letters.lock().unwrap();
        letters
            .iter()
            .filter(|(called, _, _)| *called == function)
            .map(|(_, payload, reason)| (payload.clone(), reason.clone()))
            .collect()
    }
}

#[async_trait]
impl Invoker for RecordingInvoker {
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        self.invocations.lock().unwrap().push((function, payload));
        Ok(())
    }

    async fn dead_letter(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
        reason: &str,
    ) -> Result<(), PortError> {
        if *self.refuse_dead_letters.lock().unwrap() {
            return Err(PortError::new(
                crate::ports::PortErrorKind::Transient,
                "dead-letter",
                function.name(),
                "the dead-letter queue is unreachable",
            ));
        }
        self.dead_letters
            .lock()
            .unwrap()
            .push((function, payload, reason.to_string()));
        Ok(())
    }
}
