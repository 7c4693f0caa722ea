//! The `records` use case: the desired records of each selected domain, with automatic
//! DKIM keys generated on first use and kept in the state database.

use std::path::PathBuf;

use mailzone_records::dkim::{self, DkimPrivateKey, DkimSelectorKey};
use mailzone_records::planner::inputs::InputsDigest;
use mailzone_records::{
    DkimAlgorithm, DkimManagement, DkimStage, Domain, Name, PlanInput, RecordPurpose,
};
use mailzone_store::{Store, StoredDkimKey};
use zeroize::Zeroizing;

use crate::clock;
use crate::{EngineError, LoadedConfig};

/// What to plan: which domains (all when empty), which record types (all when empty),
/// where the state database lives, and the time (for new DKIM selectors).
#[derive(Debug, Clone)]
pub struct RecordsRequest {
    pub domains: Vec<String>,
    pub types: Vec<RecordPurpose>,
    pub state_dir: PathBuf,
    pub now_unix: i64,
    /// An open store to use (the service's, possibly PostgreSQL shared by several
    /// instances) instead of opening the SQLite database in `state_dir`.
    pub store: Option<Store>,
}

/// The store a request works with: the one it was given, or the SQLite database in the
/// state directory, opened for the request and closed after it.
pub(crate) struct RequestStore {
    pub store: Store,
    owned: bool,
}

impl RequestStore {
    pub async fn open(
        given: Option<&Store>,
        state_dir: &std::path::Path,
    ) -> Result<RequestStore, EngineError> {
        Ok(match given {
            Some(store) => RequestStore {
                store: store.clone(),
                owned: false,
            },
            None => RequestStore {
                store: Store::open_sqlite(state_dir).await?,
                owned: true,
            },
        })
    }

    /// Closes the store if this request opened it (closing a shared one would close it
    /// for every clone).
    pub async fn close(self) {
        if self.owned {
            self.store.close().await;
        }
    }
}

pub use mailzone_records::zones::DomainRecords;

/// Plans the records of the selected domains. The state database is opened only when a
/// selected domain has automatic DKIM keys or published TLSA records, and only after every
/// input has been validated.
///
/// A read: the one thing it may write is a missing automatic DKIM key, created once (see
/// [`automatic_keys`]) so that every run prints the same key. TLSA rollover state and DKIM
/// stages are shown as a publication now would leave them and saved only by an apply.
pub async fn records(
    loaded: &LoadedConfig,
    request: &RecordsRequest,
) -> Result<Vec<DomainRecords>, EngineError> {
    let domains = select_domains(loaded, &request.domains)?;
    let planner = RecordPlanner::open(loaded, request, &domains).await?;
    let planned = planner.plan(&domains).await;
    planner.close().await;
    planned
}

/// Plans the records of selected domains batch by batch (a run over 100,000 domains never
/// holds all their records): the state database and the TLSA rollover state are opened and
/// computed once, for every domain the run selected.
pub(crate) struct RecordPlanner<'l> {
    loaded: &'l LoadedConfig,
    types: Vec<RecordPurpose>,
    now_unix: i64,
    /// Open when a selected domain has automatic DKIM keys or published TLSA records.
    opened: Option<RequestStore>,
    needs_dkim_store: bool,
    /// The TLSA keys the records are planned with.
    tlsa: Option<mailzone_records::tlsa::TlsaKeys>,
    planned_tlsa: Option<crate::tlsa::PlannedTlsa>,
    /// What every zone's inputs digest starts from.
    inputs: InputsDigest,
}

impl<'l> RecordPlanner<'l> {
    /// Opens the state database only when one of `domains` needs it, and only after every
    /// input has been validated.
    pub async fn open(
        loaded: &'l LoadedConfig,
        request: &RecordsRequest,
        domains: &[&Domain],
    ) -> Result<RecordPlanner<'l>, EngineError> {
        let wants = |t| request.types.is_empty() || request.types.contains(&t);
        let needs_dkim_store = domains
            .iter()
            .any(|d| matches!(d.dkim_management, DkimManagement::Automatic { .. }))
            && wants(RecordPurpose::Dkim);
        // The TLSA rollover state is kept where mailzone publishes TLSA itself.
        let needs_tlsa_store = loaded.tlsa.is_some()
            && domains.iter().any(|d| crate::tlsa::manages_tlsa(d))
            && wants(RecordPurpose::Tlsa);
        let opened = if needs_dkim_store || needs_tlsa_store {
            Some(RequestStore::open(request.store.as_ref(), &request.state_dir).await?)
        } else {
            None
        };
        let planned_tlsa = match (&opened, needs_tlsa_store) {
            (Some(opened), true) => {
                crate::tlsa::planned_rollover(loaded, &opened.store, request.now_unix).await?
            }
            _ => None,
        };
        let tlsa = match &planned_tlsa {
            Some(planned) => Some(planned.keys.clone()),
            None => loaded.tlsa.clone(),
        };
        let inputs = InputsDigest::new(
            env!("MAILZONE_PLANNING_SOURCE"),
            &loaded.config.server,
            tlsa.as_ref(),
            &request.types,
        );
        Ok(RecordPlanner {
            loaded,
            types: request.types.clone(),
            now_unix: request.now_unix,
            opened,
            needs_dkim_store,
            tlsa,
            planned_tlsa,
            inputs,
        })
    }

    /// The digest of what one zone's `domains` (all of them, in plan order) are planned
    /// from, when [`plan`](Self::plan) would compute their records from these inputs
    /// alone. `None` when planning them does more: a domain's DKIM keys are delegated
    /// (their records go to a provider zone gathered over the whole run), a key is
    /// `Pending` (a run that finds its zone in sync still promotes it, which needs the
    /// planned key records), or an algorithm has no published key yet (planning makes one).
    pub async fn inputs_digest(&self, domains: &[&Domain]) -> Result<Option<String>, EngineError> {
        let mut digest = self.inputs.clone();
        for &domain in domains {
            if domain.dkim_management.delegation().is_some() {
                return Ok(None);
            }
            match self.key_source(domain) {
                KeySource::Files => {
                    digest.domain(domain, &manual_keys(self.loaded, &domain.name));
                }
                KeySource::Stored {
                    store, algorithms, ..
                } => {
                    let stored = store.dkim_keys(domain.name.as_str()).await?;
                    let Some(keys) = settled_keys(&stored, algorithms) else {
                        return Ok(None);
                    };
                    digest.domain(domain, &keys);
                }
                KeySource::None => digest.domain(domain, &()),
            }
        }
        Ok(Some(digest.finish()))
    }

    /// Where `domain`'s DKIM keys come from when it is planned: the one decision
    /// [`plan`](Self::plan) and [`inputs_digest`](Self::inputs_digest) both follow.
    fn key_source<'p>(&'p self, domain: &'p Domain) -> KeySource<'p> {
        let store = self.opened.as_ref().map(|o| &o.store);
        match (&domain.dkim_management, store) {
            (DkimManagement::Manual { .. }, _) => KeySource::Files,
            (
                DkimManagement::Automatic {
                    algorithms,
                    selector_template,
                    ..
                },
                Some(store),
            ) if self.needs_dkim_store => KeySource::Stored {
                store,
                algorithms,
                template: selector_template,
            },
            (DkimManagement::Automatic { .. }, _) => KeySource::None,
        }
    }

    /// The records of `domains`, in their order.
    pub async fn plan(&self, domains: &[&Domain]) -> Result<Vec<DomainRecords>, EngineError> {
        let loaded = self.loaded;
        let mut out = Vec::with_capacity(domains.len());
        for &domain in domains {
            let dkim_keys = match self.key_source(domain) {
                KeySource::Files => manual_keys(loaded, &domain.name),
                KeySource::Stored {
                    store,
                    algorithms,
                    template,
                } => automatic_keys(store, domain, algorithms, template, self.now_unix).await?,
                KeySource::None => Vec::new(),
            };
            let mut records = mailzone_records::plan(PlanInput {
                server: &loaded.config.server,
                domain,
                dkim_keys: &dkim_keys,
                tlsa: self.tlsa.as_ref(),
            })?;
            if !self.types.is_empty() {
                records.retain(|r| self.types.contains(&r.purpose));
            }
            out.push(DomainRecords {
                domain: domain.clone(),
                records,
            });
        }
        Ok(out)
    }

    /// Closes the state database if the planner opened it; the TLSA rollover state the
    /// records were planned with (`None` when no selected domain publishes TLSA through
    /// mailzone), which `apply` saves once published.
    pub async fn close(self) -> Option<crate::tlsa::PlannedTlsa> {
        if let Some(opened) = self.opened {
            opened.close().await;
        }
        self.planned_tlsa
    }
}

/// Where a domain's DKIM keys come from when its records are planned.
enum KeySource<'p> {
    /// The key files the config names (loaded with it).
    Files,
    /// The state database's automatic keys, a missing one made there.
    Stored {
        store: &'p Store,
        algorithms: &'p [DkimAlgorithm],
        template: &'p str,
    },
    /// No keys: the run leaves DKIM out (`--types`), or no store was opened for them.
    None,
}

/// Whether `stored` holds a published key of `algorithm`.
fn has_published_key(stored: &[StoredDkimKey], algorithm: DkimAlgorithm) -> bool {
    stored
        .iter()
        .any(|k| k.algorithm == algorithm && k.stage.is_published())
}

/// The configured domains named on the command line (Unicode names accepted), in config
/// order; all of them when none is named.
pub(crate) fn select_domains<'a>(
    loaded: &'a LoadedConfig,
    wanted: &[String],
) -> Result<Vec<&'a Domain>, EngineError> {
    let all = &loaded.config.domains;
    if wanted.is_empty() {
        return Ok(all.iter().collect());
    }
    let mut names = Vec::with_capacity(wanted.len());
    for written in wanted {
        let name = Name::host(written)
            .map_err(|e| EngineError::Usage(format!("`{written}` is not a domain name: {e}")))?;
        if loaded.config.domain(&name).is_none() {
            let known: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
            return Err(EngineError::Usage(format!(
                "domain {} is not in {} (configured: {})",
                name.as_str(),
                loaded.path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        names.push(name);
    }
    Ok(all.iter().filter(|d| names.contains(&d.name)).collect())
}

fn manual_keys(loaded: &LoadedConfig, domain: &Name) -> Vec<DkimSelectorKey> {
    loaded
        .manual_dkim_keys
        .get(domain)
        .map(|keys| {
            mailzone_records::planner::selector_keys(keys.iter().map(|(s, k)| (s.as_str(), k)))
        })
        .unwrap_or_default()
}

/// The published automatic keys of a domain, generating one per configured algorithm that
/// has none yet. Two processes racing here agree on one key: the store keeps the first.
/// This is the only write a read (`records`, `plan`, `check`, the API's GET) makes: without
/// it each run would print a different key. With delegated keys, a slot's `Retired` key
/// (its record already withdrawn) is deleted to make room; no other stage moves here.
///
/// A first key of a domain whose DNS mailzone publishes is `Pending`: its record
/// is planned like any published key's, and the apply that confirms it served on every
/// authoritative server makes it `Active`. Under manual DNS management mailzone cannot
/// see the publication, and a first key has nothing to take over from: it is `Active`
/// at once (the operator publishes `records` before configuring the MTA).
async fn automatic_keys(
    store: &Store,
    domain: &Domain,
    algorithms: &[DkimAlgorithm],
    template: &str,
    now_unix: i64,
) -> Result<Vec<DkimSelectorKey>, EngineError> {
    let mut stored = store.dkim_keys(domain.name.as_str()).await?;
    for &algorithm in algorithms {
        if has_published_key(&stored, algorithm) {
            continue;
        }
        let Some(selector) =
            take_selector(store, domain, &mut stored, template, now_unix, algorithm).await?
        else {
            continue;
        };
        tracing::info!(
            domain = domain.name.as_str(),
            selector,
            algorithm = algorithm.as_str(),
            "generating DKIM key"
        );
        let key = generate_key(algorithm, domain.dkim_management.rsa_bits()).await?;
        let stage = if crate::dkim::publishes_dkim(domain) {
            DkimStage::Pending
        } else {
            DkimStage::Active
        };
        let kept = store
            .insert_dkim_key_if_absent(&StoredDkimKey {
                domain: domain.name.as_str().to_string(),
                selector,
                algorithm,
                private_key_pem: Zeroizing::new(key.pkcs8_pem().to_string()),
                stage,
                created_at: now_unix,
                next_transition: None,
            })
            .await?;
        stored.push(kept);
    }
    let keys = published_private_keys(&stored, algorithms)?
        .into_iter()
        .map(|(selector, private)| DkimSelectorKey {
            selector,
            key: private.public_key(),
        })
        .collect();
    Ok(keys)
}

/// What tells a domain's stored keys apart (selector, algorithm, stage, the key itself)
/// when planning would use them as they are: no key is `Pending` and every algorithm has
/// a published key. Hashed into a digest, never shown.
fn settled_keys<'k>(
    stored: &'k [StoredDkimKey],
    algorithms: &[DkimAlgorithm],
) -> Option<Vec<(&'k str, DkimAlgorithm, DkimStage, &'k str)>> {
    let pending = stored.iter().any(|k| k.stage == DkimStage::Pending);
    let missing = algorithms
        .iter()
        .any(|&algorithm| !has_published_key(stored, algorithm));
    if pending || missing {
        return None;
    }
    let keys = stored
        .iter()
        .map(|k| {
            let pem: &str = &k.private_key_pem;
            (k.selector.as_str(), k.algorithm, k.stage, pem)
        })
        .collect();
    Some(keys)
}

/// The stored keys that are published (by stage) in one of `algorithms`, decoded, as
/// (selector, key).
fn published_private_keys(
    stored: &[StoredDkimKey],
    algorithms: &[DkimAlgorithm],
) -> Result<Vec<(String, DkimPrivateKey)>, EngineError> {
    stored
        .iter()
        .filter(|k| k.stage.is_published() && algorithms.contains(&k.algorithm))
        .map(|key| {
            let private = DkimPrivateKey::from_pem(&key.private_key_pem).map_err(|e| {
                EngineError::Usage(format!(
                    "state database: the stored DKIM key {} of {} cannot be read: {e}",
                    key.selector, key.domain
                ))
            })?;
            Ok((key.selector.clone(), private))
        })
        .collect()
}

/// A new private key of `algorithm`, made on the blocking pool: an RSA key takes from a
/// fraction of a second to several seconds of CPU, and made on an async worker it would
/// stall every request and task that worker runs meanwhile.
pub(crate) async fn generate_key(
    algorithm: DkimAlgorithm,
    rsa_bits: usize,
) -> Result<DkimPrivateKey, EngineError> {
    tokio::task::spawn_blocking(move || {
        DkimPrivateKey::generate_sized(algorithm, rsa_bits, &mut rand::rng())
    })
    .await
    .map_err(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(_) => {
            EngineError::Usage("DKIM key generation was cancelled: the service is stopping".into())
        }
    })
}

/// The selector a new key of `algorithm` takes: with delegated keys, the slot no published
/// key holds (a `Retired` key still holding it, its record withdrawn, is deleted first;
/// `None` when both slots are published: the retiring key must go first); otherwise the
/// template's free selector for today. `stored` is kept in step with the store.
pub(crate) async fn take_selector(
    store: &Store,
    domain: &Domain,
    stored: &mut Vec<StoredDkimKey>,
    template: &str,
    now_unix: i64,
    algorithm: DkimAlgorithm,
) -> Result<Option<String>, EngineError> {
    if domain.dkim_management.delegation().is_none() {
        return Ok(Some(free_selector(
            stored,
            template,
            clock::utc_date(now_unix),
            algorithm,
        )));
    }
    let DkimManagement::Automatic { rotation, .. } = &domain.dkim_management else {
        return Ok(None);
    };
    let Some(slot) = free_slot(stored, algorithm, now_unix, domain.ttl, rotation) else {
        return Ok(None);
    };
    if stored.iter().any(|k| k.selector == slot) {
        store.delete_dkim_key(domain.name.as_str(), &slot).await?;
        stored.retain(|k| k.selector != slot);
    }
    Ok(Some(slot))
}

/// The first delegation slot of `algorithm` that is free: no key holds it, or a `Retired`
/// key whose record was withdrawn at least a TTL ago (`ttl`, seconds). Reusing a slot
/// sooner could meet the old key in a verifier's cache (RFC 1034 §3.6: cached for the
/// TTL) and fail mail signed with the new key; it also keeps a withdrawal and the next
/// activation of one slot in separate runs.
pub(crate) fn free_slot(
    stored: &[StoredDkimKey],
    algorithm: DkimAlgorithm,
    now_unix: i64,
    ttl: u32,
    rotation: &mailzone_records::DkimRotation,
) -> Option<String> {
    let withdrawn_long_enough = |k: &StoredDkimKey| {
        // A retired key's next transition is its deletion, `deleteAfter` after withdrawal.
        k.next_transition.is_none_or(|deletion| {
            deletion
                .saturating_sub(crate::clock::secs(rotation.delete_after))
                .saturating_add(i64::from(ttl))
                <= now_unix
        })
    };
    mailzone_records::DkimDelegation::slots(algorithm)
        .into_iter()
        .find(|slot| {
            stored
                .iter()
                .filter(|k| &k.selector == slot)
                .all(|k| k.stage == DkimStage::Retired && withdrawn_long_enough(k))
        })
}

/// The template's selector for today, with `-2`, `-3`, … appended if an older key already
/// uses it (a key retired this month keeps its selector until it is deleted).
pub(crate) fn free_selector(
    stored: &[StoredDkimKey],
    template: &str,
    date: clock::Date,
    algorithm: DkimAlgorithm,
) -> String {
    let base = dkim::expand_selector(template, date, algorithm);
    let taken = |s: &str| stored.iter().any(|k| k.selector == s);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|s| !taken(s))
        .expect("an unbounded range always has a free suffix")
}

/// The private keys of a domain's published DKIM keys, as (selector, key): manual keys from
/// the config files, automatic ones from the state database (`store`, needed only for
/// automatic management). Nothing is generated here: a key the store does not hold yet is
/// simply absent. Used by `check` to prove that the served keys are the ones mailzone holds.
pub async fn dkim_private_keys(
    loaded: &LoadedConfig,
    domain: &Domain,
    store: Option<&Store>,
) -> Result<Vec<(String, DkimPrivateKey)>, EngineError> {
    match (&domain.dkim_management, store) {
        (DkimManagement::Manual { .. }, _) => Ok(loaded
            .manual_dkim_keys
            .get(&domain.name)
            .map(|keys| keys.to_vec())
            .unwrap_or_default()),
        (DkimManagement::Automatic { algorithms, .. }, Some(store)) => {
            let stored = store.dkim_keys(domain.name.as_str()).await?;
            published_private_keys(&stored, algorithms)
        }
        (DkimManagement::Automatic { .. }, None) => Ok(Vec::new()),
    }
}

/// The desired digest of one (zone, DNS server) a publication writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDigest {
    pub zone: String,
    pub dns_server: String,
    pub digest: String,
}

/// The TLSA keys the planner would publish now (the files' keys plus the digests still
/// retiring): computed once for a batch of [`publication_digests`] calls. Reads the store.
pub async fn planning_tlsa_keys(
    loaded: &LoadedConfig,
    store: &Store,
    now_unix: i64,
) -> Result<Option<mailzone_records::tlsa::TlsaKeys>, EngineError> {
    Ok(
        match crate::tlsa::planned_rollover(loaded, store, now_unix).await? {
            Some(planned) => Some(planned.keys),
            None => loaded.tlsa.clone(),
        },
    )
}

/// The desired digest of every zone a `DnsManagement` publication of `domain` alone would
/// remember (`store.set_zone_state`): compared with the stored state it tells whether the
/// domain is in sync without asking its DNS server. A pure read: `None` when the domain
/// is under manual DNS management, or when an automatic DKIM key it needs does not exist
/// yet (the publication would make it, so the zone cannot be in sync).
pub async fn publication_digests(
    loaded: &LoadedConfig,
    store: &Store,
    domain: &Domain,
    tlsa: Option<&mailzone_records::tlsa::TlsaKeys>,
) -> Result<Option<Vec<ZoneDigest>>, EngineError> {
    if matches!(
        domain.dns_management,
        mailzone_records::DnsManagement::Manual
    ) && domain.dkim_management.delegation().is_none()
    {
        return Ok(None);
    }
    let dkim_keys = match &domain.dkim_management {
        DkimManagement::Manual { .. } => manual_keys(loaded, &domain.name),
        DkimManagement::Automatic { algorithms, .. } => {
            let stored = store.dkim_keys(domain.name.as_str()).await?;
            let complete = algorithms
                .iter()
                .all(|&algorithm| has_published_key(&stored, algorithm));
            if !complete {
                return Ok(None);
            }
            published_private_keys(&stored, algorithms)?
                .into_iter()
                .map(|(selector, private)| DkimSelectorKey {
                    selector,
                    key: private.public_key(),
                })
                .collect()
        }
    };
    let records = mailzone_records::plan(PlanInput {
        server: &loaded.config.server,
        domain,
        dkim_keys: &dkim_keys,
        tlsa,
    })?;
    let planned = [DomainRecords {
        domain: domain.clone(),
        records,
    }];
    let publishing = loaded.publishing();
    let zones = mailzone_records::zones::plan_zones(&loaded.config, publishing, &planned, &[])
        .map_err(|e| EngineError::Usage(e.to_string()))?;
    Ok(Some(
        zones
            .zones
            .iter()
            .map(|z| ZoneDigest {
                zone: z.zone.as_str().to_string(),
                dns_server: z.server.name.clone(),
                digest: z.desired_digest(),
            })
            .collect(),
    ))
}
