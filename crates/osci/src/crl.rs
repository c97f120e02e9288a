//! Revocation by certificate revocation lists (CRLs, RFC 5280 §5).
//!
//! A partner certificate that chains to a configured CA may still have
//! been revoked (a lost key, a person who left). The CAs of the public
//! administration's PKIs publish CRLs; the operator lists the files with
//! `crls = [...]` next to `ca_certs` (a cron job or the PKI's tooling keeps
//! them current). [`CrlSet`] holds them:
//!
//! * **Loading** parses every CRL (PEM `X509 CRL` blocks or DER) and
//!   verifies its signature with the key of a configured CA whose subject
//!   is the CRL's issuer (and whose keyUsage, if it has one, allows
//!   `cRLSign`); a CRL no configured CA signed is refused (at `config
//!   check`, and a changed file that does not verify keeps the last good
//!   set, with an error in the log). Only complete lists are taken: a CRL
//!   without `nextUpdate`, a partitioned (issuingDistributionPoint) or
//!   delta CRL, or one with a critical extension (an indirect CRL's
//!   `certificateIssuer`, say) is refused.
//! * **Checking** happens for every link of a chain
//!   ([`crate::certs::check`]): when the child's issuing CA (same subject
//!   and same key) has a CRL, the child's serial number must not be on
//!   it (whatever revocation date it gives), and the CA's newest CRL must
//!   not be past its `nextUpdate` — a stale list cannot tell a revoked
//!   certificate from a good one, so the certificate is refused
//!   ("revocation status unknown") rather than trusted. So is a
//!   certificate of a CA whose CRLs are all signed with another key (a
//!   re-keyed CA). CAs without a configured CRL are not checked for
//!   revocation (the configuration decides, as with an empty trust
//!   store).
//! * **Refreshing**: the files are looked at again (modification time and
//!   size) at most every [`CrlSet::refresh_every`] when certificates are
//!   checked; a replaced file is read and verified again. The checks run
//!   on the blocking pool, where the few `stat` calls belong.
//!
//! OCSP is not spoken: it needs a responder on the network per CA, and
//! the hub runs where such traffic is often not allowed; CRL files serve
//! both cases.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use der::asn1::BitString;
use der::Sequence;
use spki::AlgorithmIdentifierOwned;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::KeyUsage;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::time::Time;
use x509_cert::Version;

/// A CRL whose signature verified.
#[derive(Debug, Clone)]
pub struct Crl {
    /// The issuing CA's subject (DER equality with certificates' issuer).
    pub(crate) issuer: Name,
    /// The issuing CA's public key (SubjectPublicKeyInfo DER): a CRL
    /// speaks only for certificates of the CA that signed it.
    pub(crate) signer_spki: Vec<u8>,
    /// Revoked serial numbers (the INTEGER's content octets, as in the
    /// certificates) and when.
    revoked: BTreeMap<Vec<u8>, SystemTime>,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    /// Where it came from (for messages).
    pub source: String,
}

/// Why a CRL is not taken.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CrlError {
    #[error("{0}: not a CRL: {1}")]
    Parse(String, String),
    #[error("{0}: no configured CA certificate (ca_certs) signed this CRL of {1}: {2}")]
    Unverified(String, String, String),
    #[error("{0}: cannot read: {1}")]
    Read(String, String),
}

/// `issuingDistributionPoint`: a CRL for part of a CA's certificates.
const ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
/// `deltaCRLIndicator`: only the changes since a base CRL.
const DELTA_CRL_INDICATOR: &str = "2.5.29.27";

/// A CRL that does not list *all* revoked certificates of its issuer
/// (partitioned, delta, indirect) or has a critical extension this
/// module does not process cannot be used as the CA's complete list
/// (RFC 5280 §5.2, §5.3): refused, naming the extension.
fn check_extensions(crl: &CertificateList) -> Result<(), String> {
    let tbs = &crl.tbs_cert_list;
    for e in tbs.crl_extensions.iter().flatten() {
        let oid = e.extn_id.to_string();
        if oid == ISSUING_DISTRIBUTION_POINT || oid == DELTA_CRL_INDICATOR {
            return Err(format!(
                "extension {oid}: a partitioned or delta CRL is not the CA's complete list"
            ));
        }
        if e.critical {
            return Err(format!("critical CRL extension {oid} is not understood"));
        }
    }
    for r in tbs.revoked_certificates.iter().flatten() {
        if let Some(e) = r.crl_entry_extensions.iter().flatten().find(|e| e.critical) {
            // e.g. certificateIssuer (2.5.29.29) of an indirect CRL
            return Err(format!(
                "critical entry extension {} is not understood",
                e.extn_id
            ));
        }
    }
    Ok(())
}

/// RFC 5280's `CertificateList` with its version optional, as the ASN.1
/// has it: x509-cert's type requires the version, which a v1 CRL (one
/// without extensions, as older CAs still issue) leaves out.
#[derive(Sequence)]
struct AnyVersionList {
    tbs_cert_list: AnyVersionTbs,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

#[derive(Sequence)]
struct AnyVersionTbs {
    version: Option<Version>,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    this_update: Time,
    next_update: Option<Time>,
    revoked_certificates: Option<Vec<RevokedCert>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    crl_extensions: Option<Extensions>,
}

/// The CRL in `der`, v1 or v2 (a missing version is v1, which may carry
/// no extensions).
fn decode_list(der: &[u8]) -> Result<CertificateList, String> {
    let any = AnyVersionList::from_der(der).map_err(|e| e.to_string())?;
    let tbs = any.tbs_cert_list;
    let version = tbs.version.unwrap_or(Version::V1);
    let extended = tbs.crl_extensions.is_some()
        || tbs
            .revoked_certificates
            .iter()
            .flatten()
            .any(|r| r.crl_entry_extensions.is_some());
    if version == Version::V1 && extended {
        return Err("a v1 CRL with extensions (RFC 5280 requires v2 for them)".into());
    }
    if version == Version::V3 {
        return Err("CRL version 3 does not exist".into());
    }
    Ok(CertificateList {
        tbs_cert_list: TbsCertList {
            version,
            signature: tbs.signature,
            issuer: tbs.issuer,
            this_update: tbs.this_update,
            next_update: tbs.next_update,
            revoked_certificates: tbs.revoked_certificates,
            crl_extensions: tbs.crl_extensions,
        },
        signature_algorithm: any.signature_algorithm,
        signature: any.signature,
    })
}

/// The DER CRLs in `bytes`: PEM `X509 CRL` blocks, or one DER CRL.
fn ders(source: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, CrlError> {
    let parse = |m: String| CrlError::Parse(source.to_owned(), m);
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(vec![bytes.to_vec()]);
    };
    if !text.contains("-----BEGIN X509 CRL-----") {
        return Ok(vec![bytes.to_vec()]);
    }
    crate::certs::pem_blocks(text, "X509 CRL").map_err(|e| parse(format!("PEM: {e}")))
}

impl Crl {
    /// Every CRL in `bytes` (see [`ders`]), each verified by one of
    /// `cas` (DER certificates).
    ///
    /// # Errors
    ///
    /// See [`CrlError`].
    pub(crate) fn load(
        source: &str,
        bytes: &[u8],
        cas: &[crate::certs::Parsed],
        allow_legacy: bool,
    ) -> Result<Vec<Self>, CrlError> {
        let parse = |m: String| CrlError::Parse(source.to_owned(), m);
        let mut out = Vec::new();
        for der in ders(source, bytes)? {
            let list = decode_list(&der).map_err(&parse)?;
            // CertificateList ::= SEQUENCE { tbsCertList, … }: the signed
            // part is the first TLV inside the outer header.
            let mut reader = SliceReader::new(&der).map_err(|e| parse(e.to_string()))?;
            Header::decode(&mut reader).map_err(|e| parse(e.to_string()))?;
            let tbs = reader.tlv_bytes().map_err(|e| parse(e.to_string()))?;
            check_extensions(&list).map_err(&parse)?;
            let tbs_list = &list.tbs_cert_list;
            let issuer = tbs_list.issuer.clone();
            let Some(next_update) = tbs_list.next_update else {
                return Err(parse(
                    "it has no nextUpdate, so it cannot tell when it is out of date".into(),
                ));
            };
            if list.signature_algorithm != tbs_list.signature {
                return Err(parse("it names two signature algorithms".into()));
            }
            let value = list
                .signature
                .as_bytes()
                .ok_or_else(|| parse("a signature that is not whole bytes".into()))?;
            let mut last = format!("no CA certificate named {issuer}");
            let mut signer = None;
            for ca in cas
                .iter()
                .filter(|c| c.cert.tbs_certificate.subject == issuer)
            {
                if let Ok(Some(usage)) = ca.extension::<KeyUsage>() {
                    if !usage.crl_sign() {
                        last = format!("{:?} may not sign CRLs (keyUsage)", ca.subject());
                        continue;
                    }
                }
                let key = match ca.rsa_key() {
                    Ok(k) => k,
                    Err(e) => {
                        last = e;
                        continue;
                    }
                };
                match crate::certs::verify_signature(
                    &list.signature_algorithm,
                    &key,
                    tbs,
                    value,
                    allow_legacy,
                    "the CRL",
                ) {
                    Ok(true) => {
                        signer = Some(ca);
                        break;
                    }
                    Ok(false) => {
                        last = format!("the signature by {:?} does not verify", ca.subject())
                    }
                    Err(e) => last = e,
                }
            }
            let Some(ca) = signer else {
                return Err(CrlError::Unverified(
                    source.to_owned(),
                    issuer.to_string(),
                    last,
                ));
            };
            let signer_spki = ca
                .cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| parse(e.to_string()))?;
            let revoked = tbs_list
                .revoked_certificates
                .iter()
                .flatten()
                .map(|r| {
                    (
                        r.serial_number.as_bytes().to_vec(),
                        r.revocation_date.to_system_time(),
                    )
                })
                .collect();
            out.push(Self {
                issuer,
                signer_spki,
                revoked,
                this_update: tbs_list.this_update.to_system_time(),
                next_update: next_update.to_system_time(),
                source: source.to_owned(),
            });
        }
        if out.is_empty() {
            return Err(parse("no CRL in it".into()));
        }
        Ok(out)
    }
}

/// The configured CRL files, verified, and looked at again now and then
/// (see the module docs).
#[derive(Debug)]
pub struct CrlSet {
    files: Vec<PathBuf>,
    cas: Vec<crate::certs::Parsed>,
    allow_legacy: bool,
    /// How often the files are looked at again (at most).
    pub refresh_every: Duration,
    state: Mutex<CrlState>,
}

#[derive(Debug)]
struct CrlState {
    checked: Instant,
    /// A check is reading the files (the others use the lists in force).
    refreshing: bool,
    /// Modification time and size per file, as last read.
    seen: Vec<Option<(SystemTime, u64)>>,
    lists: Arc<Vec<Crl>>,
}

fn stamp(p: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl CrlSet {
    /// Read and verify `files` with the CAs `cas`.
    ///
    /// # Errors
    ///
    /// The first file that cannot be read or verified.
    pub(crate) fn load(
        files: Vec<PathBuf>,
        cas: Vec<crate::certs::Parsed>,
        allow_legacy: bool,
        refresh_every: Duration,
    ) -> Result<Self, CrlError> {
        let seen = files.iter().map(|p| stamp(p)).collect();
        let lists = Self::read(&files, &cas, allow_legacy)?;
        Ok(Self {
            files,
            cas,
            allow_legacy,
            refresh_every,
            state: Mutex::new(CrlState {
                checked: Instant::now(),
                refreshing: false,
                seen,
                lists: Arc::new(lists),
            }),
        })
    }

    fn read(
        files: &[PathBuf],
        cas: &[crate::certs::Parsed],
        allow_legacy: bool,
    ) -> Result<Vec<Crl>, CrlError> {
        let mut lists = Vec::new();
        for p in files {
            let source = p.display().to_string();
            let bytes =
                std::fs::read(p).map_err(|e| CrlError::Read(source.clone(), e.to_string()))?;
            lists.extend(Crl::load(&source, &bytes, cas, allow_legacy)?);
        }
        Ok(lists)
    }

    /// The lists in force, after looking at the files again if
    /// [`Self::refresh_every`] has passed. A changed file is read and
    /// verified outside the lock: meanwhile other checks use the lists in
    /// force.
    pub fn current(&self) -> Arc<Vec<Crl>> {
        let seen = {
            // (a panic elsewhere cannot leave the lists half changed:
            // they are swapped whole)
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.refreshing || state.checked.elapsed() < self.refresh_every {
                return state.lists.clone();
            }
            state.checked = Instant::now();
            let seen: Vec<_> = self.files.iter().map(|p| stamp(p)).collect();
            if seen == state.seen {
                return state.lists.clone();
            }
            state.refreshing = true;
            seen
        };
        let read = Self::read(&self.files, &self.cas, self.allow_legacy);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.refreshing = false;
        state.seen = seen;
        match read {
            Ok(lists) => {
                tracing::info!(files = self.files.len(), "osci: CRLs read again");
                state.lists = Arc::new(lists);
            }
            // The last good lists stay; a stale one refuses certificates
            // in time, with its name.
            Err(e) => {
                tracing::error!(error = %e, "osci: a changed CRL file is not taken; the last good CRLs stay in force");
            }
        }
        state.lists.clone()
    }

    /// The lists in force as they are (no look at the files).
    pub fn in_force(&self) -> Arc<Vec<Crl>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .lists
            .clone()
    }

    /// What an operator should know at `now` (for `/readyz`): per CA, its
    /// newest CRL past `nextUpdate` (its certificates are refused) or in
    /// the last quarter of its validity (a new one is due).
    pub fn attention(&self, now: SystemTime) -> Vec<String> {
        let lists = self.in_force();
        let mut newest: Vec<&Crl> = Vec::new();
        for crl in lists.iter() {
            match newest
                .iter_mut()
                .find(|n| n.issuer == crl.issuer && n.signer_spki == crl.signer_spki)
            {
                Some(n) if crl.this_update > n.this_update => *n = crl,
                Some(_) => {}
                None => newest.push(crl),
            }
        }
        let mut out = Vec::new();
        for crl in newest {
            let due = crate::message::timestamp(crl.next_update);
            if crl.next_update < now {
                out.push(format!(
                    "CRL of {} ({}) is past its nextUpdate {due}: that CA's certificates are refused (revocation status unknown) until a current CRL is in place",
                    crl.issuer, crl.source
                ));
            } else {
                let window = crl
                    .next_update
                    .duration_since(crl.this_update)
                    .unwrap_or_default();
                if now + window / 4 >= crl.next_update {
                    out.push(format!(
                        "CRL of {} ({}) is due for renewal on {due}: put the new one in place before then",
                        crl.issuer, crl.source
                    ));
                }
            }
        }
        out
    }

    /// How many CRLs are in force.
    pub fn len(&self) -> usize {
        self.in_force().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The revocation status of `serial` (the INTEGER's content octets)
/// issued by the CA `issuer` with key `spki` at `now`: `Ok` when no CRL
/// under that CA's name is configured, or the newest CRL of that CA does
/// not list it and is current.
pub(crate) fn status(
    lists: &[Crl],
    issuer: &Name,
    spki: &[u8],
    serial: &[u8],
    subject: &str,
    now: SystemTime,
) -> Result<(), String> {
    let mut named = false;
    let mut newest: Option<&Crl> = None;
    for crl in lists.iter().filter(|c| &c.issuer == issuer) {
        named = true;
        if crl.signer_spki != spki {
            continue;
        }
        // Listed is revoked, whatever date the CA gave.
        if let Some(at) = crl.revoked.get(serial) {
            return Err(format!(
                "{subject:?} (serial {}) was revoked on {} (CRL {} of {issuer})",
                hex::encode(serial),
                crate::message::timestamp(*at),
                crl.source
            ));
        }
        if newest.is_none_or(|n| crl.this_update > n.this_update) {
            newest = Some(crl);
        }
    }
    match newest {
        // The CA has CRLs, but none signed with the key that issued this
        // certificate (a re-keyed CA): nothing speaks for it.
        None if named => Err(format!(
            "the revocation status of {subject:?} is unknown: the CRLs of {issuer} are signed with another key than the one that issued it"
        )),
        Some(crl) if crl.next_update < now => Err(format!(
            "the revocation status of {subject:?} is unknown: the CRL of {issuer} ({}) was due for renewal on {}",
            crl.source,
            crate::message::timestamp(crl.next_update)
        )),
        _ => Ok(()),
    }
}
