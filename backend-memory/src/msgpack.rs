//! `cmsgpack.pack` and `cmsgpack.unpack` for the in-memory backend's scripts, as Redis
//! embeds them: Lua values to MessagePack bytes and back.
//!
//! nil, booleans, numbers (integral ones as integers), strings, and tables: a table whose
//! keys are 1..n is an array, any other a map. What `pack` writes, `unpack` reads back as
//! the same Lua value; the bytes are MessagePack's, not necessarily Redis's byte for byte.

use mlua::{Lua, Table, Value as Lua51};
use rmpv::Value as Pack;

/// Tables nested deeper than this are refused, as Redis's library does.
const MAX_DEPTH: usize = 16;

/// The `cmsgpack` table: `pack(value)` and `unpack(bytes)`.
pub(crate) fn library(lua: &Lua) -> mlua::Result<Table> {
    let cmsgpack = lua.create_table()?;
    cmsgpack.set(
        "pack",
        lua.create_function(|lua, value: Lua51| {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &to_pack(&value, 0)?)
                .map_err(mlua::Error::external)?;
            lua.create_string(&bytes)
        })?,
    )?;
    cmsgpack.set(
        "unpack",
        lua.create_function(|lua, bytes: mlua::LuaString| {
            let bytes = bytes.as_bytes();
            let value = rmpv::decode::read_value(&mut &bytes[..]).map_err(mlua::Error::external)?;
            to_lua(lua, value)
        })?,
    )?;
    Ok(cmsgpack)
}

fn to_pack(value: &Lua51, depth: usize) -> mlua::Result<Pack> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("cmsgpack: tables nested too deep"));
    }
    Ok(match value {
        Lua51::Nil => Pack::Nil,
        Lua51::Boolean(b) => Pack::Boolean(*b),
        Lua51::Integer(i) => Pack::from(*i),
        Lua51::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Pack::from(*n as i64),
        Lua51::Number(n) => Pack::F64(*n),
        Lua51::String(s) => Pack::Binary(s.as_bytes().to_vec()),
        Lua51::Table(t) => {
            let len = t.raw_len();
            let pairs: Vec<(Lua51, Lua51)> = t.clone().pairs().collect::<mlua::Result<_>>()?;
            if pairs.len() == len {
                let mut items = Vec::with_capacity(len);
                for i in 1..=len {
                    items.push(to_pack(&t.raw_get(i)?, depth + 1)?);
                }
                Pack::Array(items)
            } else {
                let mut entries = Vec::with_capacity(pairs.len());
                for (k, v) in &pairs {
                    entries.push((to_pack(k, depth + 1)?, to_pack(v, depth + 1)?));
                }
                Pack::Map(entries)
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "cmsgpack: cannot pack a {}",
                other.type_name()
            )));
        }
    })
}

fn to_lua(lua: &Lua, value: Pack) -> mlua::Result<Lua51> {
    Ok(match value {
        Pack::Nil => Lua51::Nil,
        Pack::Boolean(b) => Lua51::Boolean(b),
        Pack::Integer(i) => match i.as_i64() {
            Some(i) => Lua51::Number(i as f64),
            None => Lua51::Number(i.as_u64().map_or(0.0, |u| u as f64)),
        },
        Pack::F32(f) => Lua51::Number(f64::from(f)),
        Pack::F64(f) => Lua51::Number(f),
        Pack::String(s) => Lua51::String(lua.create_string(s.as_bytes())?),
        Pack::Binary(b) => Lua51::String(lua.create_string(&b)?),
        Pack::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Lua51::Table(t)
        }
        Pack::Map(entries) => {
            let t = lua.create_table()?;
            for (k, v) in entries {
                t.raw_set(to_lua(lua, k)?, to_lua(lua, v)?)?;
            }
            Lua51::Table(t)
        }
        Pack::Ext(..) => return Err(mlua::Error::runtime("cmsgpack: an extension type")),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn what_pack_writes_unpack_reads_back() {
        let lua = Lua::new();
        lua.globals()
            .set("cmsgpack", library(&lua).unwrap())
            .unwrap();
        let same: bool = lua
            .load(
                r#"
                local v = {7, 'two', false, {ok = 'OK'}, 2.5, {1, {2}}}
                local back = cmsgpack.unpack(cmsgpack.pack(v))
                return back[1] == 7 and back[2] == 'two' and back[3] == false
                    and back[4].ok == 'OK' and back[5] == 2.5 and back[6][2][1] == 2
                    and #back == 6
                "#,
            )
            .eval()
            .unwrap();
        assert!(same);
        let bad: mlua::Result<Lua51> = lua.load("return cmsgpack.pack(print)").eval();
        assert!(bad.is_err());
    }
}
