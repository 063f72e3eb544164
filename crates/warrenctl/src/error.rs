//! Failures and their exit codes: the sysexits values rabbitmqctl uses, for the same
//! situations (checked against rabbitmqctl 3.10, command by command).

/// Bad usage: unknown command or option, missing arguments, unsupported column.
pub const EX_USAGE: i32 = 64;
/// Bad input data: a missing vhost, an unreadable definitions file.
pub const EX_DATAERR: i32 = 65;
/// The user named does not exist.
pub const EX_NOUSER: i32 = 67;
/// The broker cannot be reached, or refused the operation.
pub const EX_UNAVAILABLE: i32 = 69;
/// An internal error (of the broker or of warrenctl), or an object that already exists.
pub const EX_SOFTWARE: i32 = 70;
/// The broker did not answer in time.
pub const EX_TEMPFAIL: i32 = 75;
/// The credentials were refused, or the user lacks the rights for the operation.
pub const EX_NOPERM: i32 = 77;
/// The config file cannot be read or parsed.
pub const EX_CONFIG: i32 = 78;

#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// Refused before anything was sent (rabbitmqctl's "argument validation" errors).
    pub invalid_arguments: bool,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            invalid_arguments: false,
        }
    }

    pub fn invalid_arguments(code: i32, message: impl Into<String>) -> Self {
        Failure {
            invalid_arguments: true,
            ..Failure::new(code, message)
        }
    }
}

pub type Result<T> = std::result::Result<T, Failure>;
