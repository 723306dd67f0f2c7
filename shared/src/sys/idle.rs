//! Holding the CPUs out of deep idle: a PM QoS request of 0 µs wakeup latency through
//! `/dev/cpu_dma_latency`, kept for as long as the file stays open (as `cyclictest` does).
//!
//! On a VM idled by `haltpoll`, a CPU that halts takes tens of microseconds to wake for a
//! cross-CPU wakeup; held at 0 µs the cpuidle governor only polls, and the wakeup costs a few.
//! The price is power: idle CPUs spin instead of halting (on a VM, host CPU time), for as long
//! as the hold lasts. Needs root (the device is 0600).

use std::fs::File;
use std::io::{self, Write};

/// Where the kernel takes CPU wakeup-latency requests.
pub const CPU_DMA_LATENCY: &str = "/dev/cpu_dma_latency";

/// The open request; dropping it closes the file, which withdraws the request.
#[derive(Debug)]
pub struct IdleHold {
    _request: File,
}

impl IdleHold {
    /// Asks for a 0 µs wakeup latency on every CPU until the hold is dropped.
    pub fn acquire() -> io::Result<IdleHold> {
        let mut request = File::options().write(true).open(CPU_DMA_LATENCY)?;
        // The device takes a binary 32-bit value (or a hex string); the request stands while open.
        request.write_all(&0i32.to_ne_bytes())?;
        Ok(IdleHold { _request: request })
    }
}
