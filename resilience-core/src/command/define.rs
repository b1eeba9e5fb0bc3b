//! The macro that turns the command table into code.
//!
//! [`command_table!`] takes one entry per command (see `table.rs`) and writes, from that
//! entry alone: the [`Command`](crate::Command) variant and its docs; `name`, `ordinal` and
//! the variant count; the keys, read/write and idempotency; the reply shape; the arity;
//! argument writing and reading (each field through its [`WireArg`](super::arg::WireArg),
//! or the entry's own pair of functions for the few irregular commands); the table of
//! [`CommandSpec`](super::CommandSpec)s the tests check against a real server; and the
//! typed [`ResilientClient`](crate::ResilientClient) method. Nothing about a command is
//! stated anywhere else, so nothing can disagree.

/// One `return` for the field that holds the command's keys: `key` (one key), `keys`
/// (a list, or two keys), `arg` (not a key).
macro_rules! key_slice {
    (key $field:ident) => {
        return ::std::slice::from_ref($field)
    };
    (keys $field:ident) => {
        return AsRef::<[String]>::as_ref($field)
    };
    (arg $field:ident) => {
        let _ = $field;
    };
}

/// The entry's name, or its `display` expression when the name depends on a field.
macro_rules! display_name {
    ([] $name:literal) => {
        $name
    };
    ([] $name:literal $sub:literal) => {
        concat!($name, " ", $sub)
    };
    ([$display:expr] $($names:literal)+) => {
        $display
    };
}

/// 1 when a `display` entry shows its other name (`ZREVRANGE`), so the two names count
/// apart in per-command tables; 0 otherwise.
macro_rules! alias_bit {
    ([] $name:literal $($sub:literal)?) => {
        0
    };
    ([$display:expr] $name:literal) => {
        usize::from(($display) != $name)
    };
}

/// An entry's `blocking` expression, or `None` for an entry without one.
macro_rules! block_time {
    ([]) => {
        None
    };
    ([$blocking:expr]) => {
        $blocking
    };
}

/// The name (and subcommand) as written first on the wire.
macro_rules! write_name {
    ($sink:ident, $name:literal) => {
        $sink.word($name)
    };
    ($sink:ident, $name:literal $sub:literal) => {{
        $sink.word($name);
        $sink.word($sub);
    }};
}

/// Whether argument list `args` names the entry (`name`, or `name sub`).
macro_rules! names_entry {
    ($args:ident, $name:literal) => {
        $args[0].eq_ignore_ascii_case($name.as_bytes())
    };
    ($args:ident, $name:literal $sub:literal) => {
        $args[0].eq_ignore_ascii_case($name.as_bytes())
            && $args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case($sub.as_bytes()))
    };
}

/// How many leading arguments are the name.
macro_rules! name_len {
    ($name:literal) => {
        1
    };
    ($name:literal $sub:literal) => {
        2
    };
}

/// The typed client method of an entry that declares one.
macro_rules! client_method {
    ([] $($rest:tt)*) => {};
    ([$method:ident -> $ret:ty] $variant:ident [$($doc:literal)*] [$($field:ident : $fty:ty),*]) => {
        impl $crate::ResilientClient {
            $(#[doc = $doc])*
            ///
            /// One call through the breaker; not retried (see
            /// [`execute_with_retry`](Self::execute_with_retry)).
            ///
            /// # Errors
            ///
            /// As [`execute`](Self::execute); a reply of another shape is `UnexpectedReply`.
            ///
            /// # Cancel safety
            ///
            /// As [`execute`](Self::execute).
            pub async fn $method(
                &self,
                $($field: impl $crate::command::IntoField<$fty>,)*
            ) -> Result<$ret, $crate::Error> {
                let reply = self
                    .execute($crate::Command::$variant {
                        $($field: $crate::command::IntoField::into_field($field),)*
                    })
                    .await?;
                <$ret as $crate::FromReply>::from_reply(reply)
            }
        }
    };
}

/// Writing an entry's arguments: derived from its fields, or its own function.
macro_rules! write_body {
    ([] $cmd:ident $sink:ident $($name:literal)+ ; $($field:ident)*) => {{
        write_name!($sink, $($name)+);
        $($crate::command::arg::WireArg::write($field, $sink);)*
        Ok(())
    }};
    ([$writer:ident, $reader:ident] $cmd:ident $sink:ident $($name:literal)+ ; $($field:ident)*) => {{
        $(let _ = $field;)*
        $writer($cmd, $sink)
    }};
}

/// Reading an entry back: derived from its fields, or its own function.
macro_rules! read_body {
    ([] $variant:ident $reader:ident $upper:ident ; $($field:ident)*) => {{
        let command = $crate::Command::$variant {
            $($field: $crate::command::arg::WireArg::read(&mut $reader)?,)*
        };
        if $reader.remaining() > 0 {
            return Err($reader.syntax());
        }
        Ok(command)
    }};
    ([$writer:ident, $read_fn:ident] $variant:ident $reader:ident $upper:ident ; $($field:ident)*) => {
        $read_fn(&mut $reader, &$upper)
    };
}

/// The command table: see the module docs.
macro_rules! command_table {
    (
        $(
            $(#[doc = $doc:literal])*
            $variant:ident {
                name: $name:literal $(+ $sub:literal)?,
                arity: $arity:literal,
                write: $write:expr,
                idempotent: $idempotent:expr,
                reply: $reply:expr,
                example: $example:literal,
                $(aliases: [$($alias:literal),*],)?
                $(blocking: $blocking:expr,)?
                $(display: $display:expr,)?
                $(custom: ($writer:ident, $read_fn:ident),)?
                $(method: $method:ident -> $ret:ty,)?
            } $([ $( $(#[$fattr:meta])* $role:ident $field:ident : $fty:ty ),* $(,)? ])?
        )*
    ) => {
        /// A Redis command the resilient client knows how to route, retry, queue and replay.
        ///
        /// A [`Command`] is a plain enum, not a closure: it knows its Redis name, the keys
        /// it touches, whether it writes and whether applying it twice is the same as
        /// applying it once. Because it is data it can be logged, counted, ordered per key,
        /// serialized into a durable queue and replayed later by any
        /// [`KvBackend`](crate::KvBackend).
        ///
        /// Every variant comes from one entry of the command table, which states its
        /// arity, keys, read/write, idempotency (on every entry: there is no default), reply
        /// shape and typed client method. [`Command::SPECS`] lists the entries.
        ///
        /// Every backend must return the canonical reply shape documented on each variant
        /// (RESP2 and RESP3 differences are ironed out by each backend), so callers see the
        /// same [`Value`](crate::Value) whatever the driver.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Command {
            $(
                $(#[doc = $doc])*
                $variant $({
                    $(
                        #[doc = concat!("`", stringify!($field), "`: see the variant.")]
                        $(#[$fattr])*
                        $field: $fty,
                    )*
                })?,
            )*
        }

        #[allow(non_camel_case_types, dead_code)]
        #[repr(usize)]
        enum Ordinal {
            $($variant,)*
            Count,
        }

        /// Every entry of the command table, in order.
        const SPECS: &[CommandSpec] = &[
            $(CommandSpec {
                name: display_name!([] $name $($sub)?),
                arity: $arity,
                example: $example,
            },)*
        ];

        #[allow(unused_variables)]
        impl Command {
            /// The Redis command name, upper case (`"GET"`, `"ZREVRANGEBYSCORE"`,
            /// `"SCRIPT LOAD"`; `"RAW"` for [`Command::Raw`]).
            #[inline]
            pub fn name(&self) -> &'static str {
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => {
                        display_name!([$($display)?] $name $($sub)?)
                    })*
                }
            }

            /// A dense index of the command's [`name`](Self::name) (below
            /// [`Command::VARIANTS`]), for per-command tables.
            #[inline]
            pub fn ordinal(&self) -> usize {
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => {
                        2 * (Ordinal::$variant as usize)
                            + alias_bit!([$($display)?] $name $($sub)?)
                    })*
                }
            }

            /// A bound on [`Command::ordinal`]: every ordinal is below it.
            pub const VARIANTS: usize = 2 * (Ordinal::Count as usize);

            /// Every entry of the command table: name, arity and an example.
            pub const SPECS: &'static [CommandSpec] = SPECS;

            /// The keys this command touches, in argument order (empty for `PING`, `SCAN`,
            /// `SCRIPT LOAD`, `PUBLISH`). Used for per-key ordering in the recovery queue and
            /// cluster routing.
            #[allow(unreachable_code)]
            pub fn keys(&self) -> &[String] {
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => {
                        $($(key_slice!($role $field);)*)?
                        &[]
                    })*
                }
            }

            /// Whether the command may change data on the server.
            #[inline]
            pub fn is_write(&self) -> bool {
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => $write,)*
                }
            }

            /// Whether applying the command twice leaves the same state as applying it
            /// once, so a call that timed out (and may or may not have run) can be retried
            /// safely. Stated on every entry of the table.
            #[inline]
            pub fn is_idempotent(&self) -> bool {
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => $idempotent,)*
                }
            }

            /// How long the server may hold this command's reply on purpose (`BLPOP …
            /// timeout`, `XREAD BLOCK ms`): `None` for a command that answers at once.
            /// `Some(Duration::ZERO)` blocks without limit. A backend must give a blocking
            /// command this much time beyond its usual reply timeout, and a connection that
            /// no other call is waiting on.
            #[inline]
            pub fn blocks_for(&self) -> Option<std::time::Duration> {
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => {
                        block_time!([$($blocking)?])
                    })*
                }
            }

            /// The shape this command's reply takes.
            #[inline]
            pub(crate) fn reply_kind(&self) -> Reply {
                use Reply::*;
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => $reply,)*
                }
            }

            /// Redis's arity of the command: the argument count including the name when
            /// positive, the least count when negative.
            pub fn arity(&self) -> i32 {
                match self {
                    $(Command::$variant { .. } => $arity,)*
                }
            }

            /// Writes the command to `sink` as Redis receives it: the name, then every
            /// argument in order. This is the only place commands are spelled; every Redis
            /// backend sends what this writes.
            ///
            /// Fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) only
            /// for a command that cannot be spelled: a [`Command::Raw`] without arguments,
            /// an `MSET` with fewer values than keys.
            pub fn write_args(&self, sink: &mut impl ArgSink) -> Result<(), BackendError> {
                let cmd = self;
                match self {
                    $(Command::$variant { $($($field,)*)? .. } => {
                        write_body!([$($writer, $read_fn)?] cmd sink $name $($sub)? ; $($($field)*)?)
                    })*
                }
            }

            /// Reads an argument list (name first, in any case) back into the command
            /// Redis would run: the inverse of [`write_args`](Self::write_args), which
            /// also takes the other spellings Redis accepts (`SET … EX`, options in any
            /// case). A name the table does not know becomes a [`Command::Raw`] that
            /// writes and is not idempotent. Malformed arguments get the error line Redis
            /// sends.
            pub fn from_args(args: &[Bytes]) -> Result<Command, BackendError> {
                if args.is_empty() {
                    return Err(BackendError::from_reply("ERR unknown command ''"));
                }
                let upper = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
                $(
                    if names_entry!(args, $name $($sub)?)
                        $($(|| upper == $alias)*)?
                    {
                        let n = args.len() as i32;
                        let arity: i32 = $arity;
                        let lower = display_name!([] $name $($sub)?).to_ascii_lowercase();
                        if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
                            return Err(super::arg::wrong_args(&lower.replace(' ', "|")));
                        }
                        #[allow(unused_mut)]
                        let mut reader =
                            ArgReader::new(&lower, &args[name_len!($name $($sub)?)..]);
                        return read_body!([$($writer, $read_fn)?] $variant reader upper ; $($($field)*)?);
                    }
                )*
                Ok(Command::Raw {
                    args: args.to_vec(),
                    keys: Vec::new(),
                    write: true,
                    idempotent: false,
                })
            }
        }

        $(
            client_method!([$($method -> $ret)?] $variant [$($doc)*] [$($($field : $fty),*)?]);
        )*
    };
}
