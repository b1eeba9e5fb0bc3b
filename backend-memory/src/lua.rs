//! `EVAL` on the in-memory backend: the script's own Lua source, run by Lua 5.1 (the
//! dialect Redis embeds), with `redis.call` and `redis.pcall` reaching the in-memory data.
//!
//! So a script has one source for Redis and for this backend, and its tests need no
//! server. What a script sees is what Redis gives it:
//!
//! - `KEYS` and `ARGV` as tables of strings; the `table`, `string` and `math` libraries,
//!   `cmsgpack` (`pack`, `unpack`), and the base functions (`tonumber`, `unpack`,
//!   `pcall`, …); no `os` or `io`.
//! - `redis.call(name, ...)`: arguments are strings or numbers (numbers spelled as Lua
//!   spells them, `%.14g`); the command runs at once, inside the backend's lock, so the
//!   whole script is atomic. A command error stops the script and is its reply, unchanged.
//! - `redis.pcall` returns a command error as `{err = message}` instead;
//!   `redis.error_reply(m)` and `redis.status_reply(m)` build such tables.
//! - Replies converted as Redis converts them (RESP2): integer → number, bulk → string,
//!   nil → `false`, array → table, status → `{ok = …}`, a score → its decimal string, a hash
//!   → the flat field/value table. The script's result is converted back: number → integer
//!   (truncated), string → bulk, table → array (up to the first nil) or `{ok}` / `{err}`,
//!   `false` / `nil` → nil, `true` → 1.
//!
//! - Every key a command touches must be one of the script's `KEYS`, as Redis documents
//!   (and Redis Cluster, ACL key patterns and proxies rely on): a script that builds a key
//!   name itself fails here with an error naming the key, instead of passing its tests and
//!   failing on a cluster.
//!
//! Each compiled script is cached by SHA1, in one Lua state per backend.

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value as Lua51};

use super::context::ScriptContext;
use resilience_core::{BackendError, Value};

/// The Lua state of one backend and its compiled scripts.
pub(crate) struct LuaEngine {
    lua: Lua,
    compiled: HashMap<String, Function>,
}

impl std::fmt::Debug for LuaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaEngine")
            .field("compiled", &self.compiled.len())
            .finish_non_exhaustive()
    }
}

fn script_error(e: &mlua::Error) -> BackendError {
    // A command error raised by `redis.call` is the script's reply as it was.
    if let Some(cause) = command_error(e) {
        return cause;
    }
    let message = e.to_string().replace(['\r', '\n'], " ");
    BackendError::from_reply(&format!("ERR Error running script: {message}"))
}

/// The command error inside a Lua error, if `redis.call` raised it.
fn command_error(e: &mlua::Error) -> Option<BackendError> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<BackendError>().cloned(),
        mlua::Error::CallbackError { cause, .. } => command_error(cause),
        mlua::Error::WithContext { cause, .. } => command_error(cause),
        _ => None,
    }
}

impl LuaEngine {
    pub(crate) fn new() -> Result<Self, BackendError> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )
        .map_err(|e| script_error(&e))?;
        let cmsgpack = super::msgpack::library(&lua).map_err(|e| script_error(&e))?;
        lua.globals()
            .set("cmsgpack", cmsgpack)
            .map_err(|e| script_error(&e))?;
        Ok(LuaEngine {
            lua,
            compiled: HashMap::new(),
        })
    }

    /// Runs `source` (whose SHA1 is `sha`) with `KEYS = keys`, `ARGV = args`.
    pub(crate) fn run(
        &mut self,
        sha: &str,
        source: &str,
        ctx: &mut ScriptContext<'_>,
        keys: &[String],
        args: &[Bytes],
    ) -> Result<Value, BackendError> {
        let function = match self.compiled.get(sha) {
            Some(f) => f.clone(),
            None => {
                let f = self
                    .lua
                    .load(source)
                    .set_name("@user_script")
                    .into_function()
                    .map_err(|e| {
                        BackendError::from_reply(&format!(
                            "ERR Error compiling script (new function): {}",
                            e.to_string().replace(['\r', '\n'], " ")
                        ))
                    })?;
                self.compiled.insert(sha.to_owned(), f.clone());
                f
            }
        };
        let lua = &self.lua;
        let fail = |e: mlua::Error| script_error(&e);
        let globals = lua.globals();
        let key_table = strings(lua, keys.iter().map(|k| k.as_bytes())).map_err(fail)?;
        let arg_table = strings(lua, args.iter().map(|a| a.as_ref())).map_err(fail)?;
        globals.set("KEYS", key_table).map_err(fail)?;
        globals.set("ARGV", arg_table).map_err(fail)?;
        let ctx = RefCell::new(ctx);
        let result = lua.scope(|scope| {
            let redis = lua.create_table()?;
            redis.set(
                "call",
                scope.create_function(|lua, args: MultiValue| {
                    let reply = call(&ctx, keys, args)?.map_err(mlua::Error::external)?;
                    to_lua(lua, reply)
                })?,
            )?;
            redis.set(
                "pcall",
                scope.create_function(|lua, args: MultiValue| match call(&ctx, keys, args)? {
                    Ok(reply) => to_lua(lua, reply),
                    Err(e) => reply_table(lua, "err", e.message()),
                })?,
            )?;
            redis.set(
                "error_reply",
                lua.create_function(|lua, message: mlua::LuaString| {
                    reply_table(lua, "err", &message.to_string_lossy())
                })?,
            )?;
            redis.set(
                "status_reply",
                lua.create_function(|lua, message: mlua::LuaString| {
                    reply_table(lua, "ok", &message.to_string_lossy())
                })?,
            )?;
            globals.set("redis", redis)?;
            let out: Lua51 = function.call(())?;
            from_lua(&out)
        });
        result.map_err(fail)?
    }
}

/// A Lua array of Lua strings.
fn strings<'a>(lua: &Lua, items: impl ExactSizeIterator<Item = &'a [u8]>) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// One `redis.call`: the arguments as a command, run in the script's context. The outer
/// error is a Lua error (bad arguments); the inner one the command's.
fn call(
    ctx: &RefCell<&mut ScriptContext<'_>>,
    declared: &[String],
    args: MultiValue,
) -> mlua::Result<Result<Value, BackendError>> {
    let mut words = Vec::with_capacity(args.len());
    for arg in args {
        words.push(match arg {
            Lua51::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            Lua51::Integer(n) => Bytes::from(n.to_string()),
            Lua51::Number(n) => Bytes::from(lua_number(n)),
            _ => {
                return Err(mlua::Error::RuntimeError(
                    "Lua redis lib command arguments must be strings or integers".to_owned(),
                ));
            }
        });
    }
    if words.is_empty() {
        return Err(mlua::Error::RuntimeError(
            "Please specify at least one argument for this redis lib call".to_owned(),
        ));
    }
    let command = match resilience_core::Command::from_args(&words) {
        Ok(command) => command,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(key) = undeclared_key(&command, declared) {
        return Ok(Err(BackendError::from_reply(&format!(
            "ERR Script attempted to access key '{}', which is not in KEYS",
            String::from_utf8_lossy(&key)
        ))));
    }
    // The canonical reply nests `WITHSCORES` pairs; RESP2, which scripts see, is flat.
    let flat = matches!(
        command,
        resilience_core::Command::Zrange {
            with_scores: true,
            ..
        } | resilience_core::Command::Zrangebyscore {
            with_scores: true,
            ..
        } | resilience_core::Command::Zpopmin { .. }
            | resilience_core::Command::Zpopmax { .. }
    );
    let reply = ctx.borrow_mut().call(command);
    Ok(reply.map(|v| match v {
        Value::Array(pairs) if flat => Value::Array(
            pairs
                .into_iter()
                .flat_map(|pair| match pair {
                    Value::Array(items) => items,
                    other => vec![other],
                })
                .collect(),
        ),
        other => other,
    }))
}

/// The first key `command` touches that is not among `declared`.
fn undeclared_key(command: &resilience_core::Command, declared: &[String]) -> Option<Bytes> {
    command
        .keys()
        .iter()
        .find(|k| !declared.iter().any(|d| d == *k))
        .map(|k| Bytes::copy_from_slice(k.as_bytes()))
}

/// A number as Lua 5.1 turns it into a string (`%.14g`).
fn lua_number(n: f64) -> String {
    if n.is_nan() {
        return "nan".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if n == n.trunc() && n.abs() < 1e14 {
        return format!("{}", n as i64);
    }
    // 14 significant digits, trailing zeros dropped, exponent form outside 1e-4..1e14.
    let formatted = format!("{n:.13e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..14).contains(&exponent) {
        let decimals = usize::try_from(13 - exponent).unwrap_or(0);
        let fixed = format!("{n:.decimals$}");
        trim_zeros(&fixed).to_owned()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exponent.abs())
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn reply_table(lua: &Lua, field: &str, message: &str) -> mlua::Result<Lua51> {
    let t = lua.create_table()?;
    t.set(field, message)?;
    Ok(Lua51::Table(t))
}

/// A command's reply as Redis hands it to a script (RESP2 conversion).
fn to_lua(lua: &Lua, reply: Value) -> mlua::Result<Lua51> {
    Ok(match reply {
        Value::Nil => Lua51::Boolean(false),
        Value::Okay => reply_table(lua, "ok", "OK")?,
        Value::Status(s) => reply_table(lua, "ok", &s)?,
        Value::Int(n) => Lua51::Integer(n),
        Value::Double(d) => {
            Lua51::String(lua.create_string(resilience_core::backend::format_score(d))?)
        }
        Value::Bytes(b) => Lua51::String(lua.create_string(&b)?),
        Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Lua51::Table(t)
        }
        Value::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                t.raw_set(2 * i + 1, to_lua(lua, k)?)?;
                t.raw_set(2 * i + 2, to_lua(lua, v)?)?;
            }
            Lua51::Table(t)
        }
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "a reply of a shape scripts cannot see: {other:?}"
            )));
        }
    })
}

/// The script's result as Redis replies it; a `{err = …}` table is the script's error.
fn from_lua(value: &Lua51) -> mlua::Result<Result<Value, BackendError>> {
    Ok(Ok(match value {
        Lua51::Nil | Lua51::Boolean(false) => Value::Nil,
        Lua51::Boolean(true) => Value::Int(1),
        Lua51::Integer(n) => Value::Int(*n),
        Lua51::Number(n) => Value::Int(n.trunc() as i64),
        Lua51::String(s) => Value::Bytes(Bytes::copy_from_slice(&s.as_bytes())),
        Lua51::Table(t) => return table_reply(t),
        _ => Value::Nil,
    }))
}

fn table_reply(t: &Table) -> mlua::Result<Result<Value, BackendError>> {
    if let Lua51::String(e) = t.raw_get::<Lua51>("err")? {
        let message = e.to_string_lossy();
        let line = if message.split_whitespace().next().is_some_and(is_error_code) {
            message
        } else {
            format!("ERR {message}")
        };
        return Ok(Err(BackendError::from_reply(&line)));
    }
    if let Lua51::String(s) = t.raw_get::<Lua51>("ok")? {
        return Ok(Ok(Value::Status(s.to_string_lossy())));
    }
    let mut items = Vec::new();
    for i in 1.. {
        let item: Lua51 = t.raw_get(i)?;
        if item.is_nil() {
            break;
        }
        match from_lua(&item)? {
            Ok(v) => items.push(v),
            // An error table nested in an array is sent as the error reply it holds.
            Err(e) => items.push(Value::Bytes(Bytes::from(e.message().to_owned()))),
        }
    }
    Ok(Ok(Value::Array(items)))
}

/// Whether `word` is an error code (`ERR`, `WRONGTYPE`, …): upper-case letters only.
fn is_error_code(word: &str) -> bool {
    word.len() > 1 && word.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_spelled_as_lua_spells_them() {
        for (n, want) in [
            (3.0, "3"),
            (-7.0, "-7"),
            (0.5, "0.5"),
            (0.1 + 0.2, "0.3"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (123_456.789, "123456.789"),
        ] {
            assert_eq!(lua_number(n), want, "{n}");
        }
    }
}
