//! Logging through the `log` facade (feature `log`), target `silverback`; without the
//! feature the macros compile to nothing (their arguments are still type-checked).

macro_rules! log_at {
    ($level:ident, $($arg:tt)*) => {{
        #[cfg(feature = "log")]
        {
            ::log::$level!(target: "silverback", $($arg)*);
        }
        #[cfg(not(feature = "log"))]
        {
            if false {
                let _ = format_args!($($arg)*);
            }
        }
    }};
}

/// Routine events: accepts, closes.
macro_rules! debug {
    ($($arg:tt)*) => { $crate::logging::log_at!(debug, $($arg)*) };
}

/// Events an operator may want to see: refusals, timeouts, protocol errors.
macro_rules! info {
    ($($arg:tt)*) => { $crate::logging::log_at!(info, $($arg)*) };
}

pub(crate) use {debug, info, log_at};
