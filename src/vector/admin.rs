//! The collection control file `/.vexfs/collections` of a mount: reading
//! it lists the collections with their statistics (one JSON line each);
//! writing a JSON command creates or drops one:
//! `{"op":"create","name":"docs","dim":384,"metric":"cosine","type":"f32","m":16,"ef_construction":200}`
//! (`type`, `m`, `ef_construction`, `int8_scale` and `list_bytes` optional)
//! or `{"op":"drop","name":"docs"}`. Only root or the owner of the root
//! directory may change collections.

use super::api::CollectionParams;
use crate::error::{FsError, Result};
use crate::format::vector::{ElemType, Metric};
use crate::fs::core::Fs;
use crate::fs::perm::Ctx;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Command {
    Create {
        name: String,
        dim: u32,
        metric: String,
        #[serde(rename = "type", default)]
        elem: Option<String>,
        #[serde(default)]
        m: Option<u16>,
        #[serde(default)]
        ef_construction: Option<u16>,
        #[serde(default)]
        int8_scale: Option<f32>,
        #[serde(default)]
        list_bytes: Option<u32>,
    },
    Drop {
        name: String,
    },
}

/// Parse the parameters of a create command (also used by `vexctl`).
pub fn params(name: &str, dim: u32, metric: &str, elem: Option<&str>) -> Result<CollectionParams> {
    let metric = Metric::parse(metric)
        .ok_or_else(|| FsError::Invalid(format!("unknown metric {metric:?}: use l2, cosine or ip")))?;
    let elem = match elem {
        None => ElemType::F32,
        Some(t) => ElemType::parse(t).ok_or_else(|| FsError::Invalid(format!("unknown type {t:?}: f32, f16, int8")))?,
    };
    Ok(CollectionParams::new(name, dim, metric, elem))
}

/// One JSON line per collection, with its statistics.
pub fn list(fs: &Fs) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for rec in fs.collections()? {
        let stats = fs.collection_stats(&rec.name)?;
        out.extend(serde_json::to_vec(&stats).map_err(|e| FsError::Invalid(e.to_string()))?);
        out.push(b'\n');
    }
    Ok(out)
}

/// Run one command written to the control file.
pub fn command(fs: &Fs, ctx: &Ctx, buf: &[u8]) -> Result<Vec<u8>> {
    let cmd: Command =
        serde_json::from_slice(buf).map_err(|e| FsError::Invalid(format!("malformed collection command: {e}")))?;
    let root_owner = fs.getattr(u64::from(crate::format::ROOT_INO))?.uid;
    if ctx.uid != 0 && ctx.uid != root_owner {
        return Err(FsError::NotPermitted);
    }
    let reply = match cmd {
        Command::Create {
            name,
            dim,
            metric,
            elem,
            m,
            ef_construction,
            int8_scale,
            list_bytes,
        } => {
            let mut p = params(&name, dim, &metric, elem.as_deref())?;
            p.m = m.unwrap_or(p.m);
            p.ef_construction = ef_construction.unwrap_or(p.ef_construction);
            p.int8_scale = int8_scale.unwrap_or(p.int8_scale);
            p.list_bytes = list_bytes;
            let rec = fs.create_collection(&p)?;
            serde_json::json!({"ok": true, "created": rec.name, "id": rec.id})
        }
        Command::Drop { name } => {
            fs.drop_collection(&name)?;
            serde_json::json!({"ok": true, "dropped": name})
        }
    };
    let mut out = reply.to_string().into_bytes();
    out.push(b'\n');
    Ok(out)
}
