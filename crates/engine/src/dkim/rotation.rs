//! DKIM key rotation (`mailzone dkim rotate`, the `DkimRotation` task) and new keys
//! (`mailzone dkim generate`): stages move with time and with confirmed publication.

use mailzone_records::dkim::DkimPrivateKey;
use mailzone_records::{DkimAlgorithm, DkimManagement, DkimStage};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::records::RequestStore;
use crate::{EngineError, LoadedConfig, RecordsRequest};

use super::*;

/// What one rotation run did to a domain's keys.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationReport {
    pub domain: String,
    /// New keys, `Pending` until their records are served.
    pub generated: Vec<String>,
    /// Keys that became `Active` (their records were confirmed served).
    pub activated: Vec<String>,
    /// Keys replaced by an activated one: still published, no longer for signing.
    pub retiring: Vec<String>,
    /// Keys withdrawn from DNS.
    pub retired: Vec<String>,
    /// Keys deleted (withdrawn long enough).
    pub deleted: Vec<String>,
    /// Why pending keys stay pending, when they do.
    pub waiting: Option<String>,
    /// Why the `onKeyChange` command failed, when it did (the key changes stand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_key_change_failed: Option<String>,
}

/// One rotation run over the selected domains with automatic DKIM keys:
/// 1. time moves: `Retiring` past its time → `Retired` (record withdrawn), `Retired` past
///    its time → deleted;
/// 2. a new `Pending` key per algorithm whose `Active` key is older than `rotateAfter`
///    (or at once with `force`);
/// 3. publication: for a domain under automatic DNS management, an apply of its DKIM
///    records, which returns once every authoritative server serves them;
/// 4. only then `Pending` → `Active` and the previous `Active` → `Retiring`.
///
/// A failure in 3 returns the error with every key as it was: the old key stays active, so
/// mail is never signed with a key that is not in DNS. With manual DNS management, pending
/// keys are promoted only when `confirmed_published` says the operator published them.
pub async fn rotate(
    loaded: &LoadedConfig,
    request: &RecordsRequest,
    force: bool,
    confirmed_published: bool,
    progress: &dyn crate::Progress,
) -> Result<Vec<RotationReport>, EngineError> {
    let domains = crate::records::select_domains(loaded, &request.domains)?;
    let opened = RequestStore::open(request.store.as_ref(), &request.state_dir).await?;
    let store = opened.store.clone();
    let now = request.now_unix;
    let mut reports = Vec::new();
    for domain in domains {
        let DkimManagement::Automatic {
            algorithms,
            selector_template,
            rotation,
            ..
        } = &domain.dkim_management
        else {
            continue;
        };
        let name = domain.name.as_str();
        let mut report = RotationReport {
            domain: name.to_string(),
            ..RotationReport::default()
        };
        // 1. Time moves.
        let mut withdrawn = Vec::new();
        for key in store.dkim_keys(name).await? {
            let due = key.next_transition.is_some_and(|t| t <= now);
            match key.stage {
                DkimStage::Retiring if due => {
                    let next = Some(crate::clock::after(now, rotation.delete_after));
                    store
                        .set_dkim_stage(name, &key.selector, DkimStage::Retired, next)
                        .await?;
                    withdrawn.push(KeyChange {
                        selector: key.selector.clone(),
                        algorithm: key.algorithm,
                        stage: DkimStage::Retired,
                        replaces: Vec::new(),
                    });
                    report.retired.push(key.selector);
                }
                DkimStage::Retired if due => {
                    store.delete_dkim_key(name, &key.selector).await?;
                    report.deleted.push(key.selector);
                }
                _ => {}
            }
        }
        // 2. New keys.
        let keys = store.dkim_keys(name).await?;
        for &algorithm in algorithms {
            let of_algorithm = |stage: DkimStage| {
                keys.iter()
                    .filter(move |k| k.algorithm == algorithm && k.stage == stage)
            };
            if of_algorithm(DkimStage::Pending).next().is_some() {
                continue;
            }
            let Some(active) = of_algorithm(DkimStage::Active).max_by_key(|k| k.created_at) else {
                continue;
            };
            if !force
                && now.saturating_sub(active.created_at) < crate::clock::secs(rotation.rotate_after)
            {
                continue;
            }
            let Some(kept) =
                new_pending_key(&store, domain, &keys, algorithm, selector_template, now).await?
            else {
                // Delegated: no slot is free (the retiring key must be withdrawn first, and
                // at least a TTL ago).
                continue;
            };
            report.generated.push(kept.selector);
        }
        // 3. Publication.
        let has_pending = store
            .dkim_keys(name)
            .await?
            .iter()
            .any(|k| k.stage == DkimStage::Pending);
        let changed_dns = has_pending || !report.retired.is_empty();
        let mut activated = Vec::new();
        let publishes = publishes_dkim(domain);
        let published = match publishes {
            true if changed_dns => {
                let reconcile = crate::ReconcileRequest {
                    records: RecordsRequest {
                        domains: vec![name.to_string()],
                        types: vec![mailzone_records::RecordPurpose::Dkim],
                        state_dir: request.state_dir.clone(),
                        now_unix: now,
                        store: Some(store.clone()),
                    },
                    apply: true,
                    // Withdrawing a retired key is the point of this apply, and with only
                    // the DKIM type in play the only possible deletions are DKIM records
                    // mailzone published itself: the delete limit would refuse exactly that.
                    force: true,
                    delete_limit: crate::reconcile::DEFAULT_DELETE_LIMIT,
                    after_read: None,
                    on_zone: None,
                    concurrency: 1,
                    both_cores: false,
                };
                // 4. The apply promotes the pending keys it confirmed served (and runs
                // onKeyChange for them).
                let applied = crate::reconcile(loaded, &reconcile, progress).await?;
                for (d, changes) in applied.dkim_changes {
                    if d == domain.name {
                        activated.extend(changes);
                    }
                }
                report.on_key_change_failed = applied.on_key_change_failures.into_iter().next();
                true
            }
            true => true,
            false => confirmed_published,
        };
        if has_pending && !published {
            report.waiting = Some(format!(
                "mailzone does not publish the DKIM records of {name} (manual DNS management, or dkim not in publishRecords): publish the records of `mailzone records {name} --types dkim`, then run `mailzone dkim rotate {name} --confirm-published`"
            ));
        }
        let mut to_announce = withdrawn;
        if has_pending && published && !publishes {
            // 4. With manual DNS, the operator's confirmation is the proof.
            let changes = promote_served(&store, domain, None, now).await?;
            to_announce.extend(changes.iter().cloned());
            activated.extend(changes);
        }
        for change in &activated {
            report.activated.push(change.selector.clone());
            report.retiring.extend(change.replaces.iter().cloned());
        }
        if let Err(e) = run_on_key_change(loaded, &request.state_dir, domain, &to_announce).await {
            report.on_key_change_failed.get_or_insert(e.to_string());
        }
        reports.push(report);
    }
    opened.close().await;
    Ok(reports)
}

/// Makes a new `Pending` key of `algorithm` for `domain` under a free selector of the
/// template (`keys` are the domain's stored keys). Two processes racing here agree on one
/// key: the store keeps the first.
pub(crate) async fn new_pending_key(
    store: &mailzone_store::Store,
    domain_config: &mailzone_records::Domain,
    keys: &[mailzone_store::StoredDkimKey],
    algorithm: DkimAlgorithm,
    selector_template: &str,
    now: i64,
) -> Result<Option<mailzone_store::StoredDkimKey>, EngineError> {
    let domain = domain_config.name.as_str();
    let mut keys = keys.to_vec();
    let Some(selector) = crate::records::take_selector(
        store,
        domain_config,
        &mut keys,
        selector_template,
        now,
        algorithm,
    )
    .await?
    else {
        return Ok(None);
    };
    tracing::info!(
        domain,
        selector,
        algorithm = algorithm.as_str(),
        "generating a pending DKIM key"
    );
    let key =
        crate::records::generate_key(algorithm, domain_config.dkim_management.rsa_bits()).await?;
    Ok(Some(
        store
            .insert_dkim_key_if_absent(&mailzone_store::StoredDkimKey {
                domain: domain.to_string(),
                selector,
                algorithm,
                private_key_pem: Zeroizing::new(key.pkcs8_pem().to_string()),
                stage: DkimStage::Pending,
                created_at: now,
                next_transition: None,
            })
            .await?,
    ))
}

/// A key `dkim generate` made (or found already waiting).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// Always `Pending`: the key signs nothing before its record is served.
    pub stage: &'static str,
    /// `false` when a pending key of this algorithm was already waiting and is returned
    /// instead of a second one.
    pub created: bool,
    /// Whether mailzone publishes the domain's DKIM records (then `dkim rotate`, `apply` or the
    /// service publish the key and activate it once served).
    pub dns_automatic: bool,
    /// Where the TXT record is published: `<selector>._domainkey.<domain>`, or with
    /// `delegateTo` the provider-zone name its CNAME points to.
    pub owner: String,
    /// The TXT record's value.
    pub record: String,
}

/// `mailzone dkim generate`: a new `Pending` key per algorithm (the given one, or every
/// configured one) for each selected domain with automatic DKIM keys. A pending key is
/// never exported for signing; it becomes `Active` on the rotation promotion path (the
/// next `dkim rotate`, `apply` or `DkimRotation` task confirms its record served), and the
/// key it replaces then retires. One pending key per algorithm at a time: a second call
/// returns the waiting one.
///
/// Domains named explicitly must have automatic DKIM keys; with none named, domains with
/// manual keys are passed over (and it is an error if no domain is left).
pub async fn generate(
    loaded: &LoadedConfig,
    request: &RecordsRequest,
    algorithm: Option<DkimAlgorithm>,
) -> Result<Vec<GeneratedKey>, EngineError> {
    let domains = crate::records::select_domains(loaded, &request.domains)?;
    let mut selected = Vec::new();
    for domain in domains {
        match &domain.dkim_management {
            DkimManagement::Manual { .. } if request.domains.is_empty() => {}
            DkimManagement::Manual { .. } => {
                return Err(EngineError::Usage(format!(
                    "{} has manual DKIM keys (dkimManagement.manual): mailzone does not make keys for it; create one (e.g. `openssl genpkey -algorithm ed25519 -out key.pem`) and add it to dkimManagement.manual.keys, or switch the domain to dkimManagement.automatic",
                    domain.name
                )));
            }
            DkimManagement::Automatic { algorithms, .. } => {
                let wanted = match algorithm {
                    Some(a) if !algorithms.contains(&a) => {
                        let configured: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
                        return Err(EngineError::Usage(format!(
                            "{}: {} is not in dkimManagement.automatic.algorithms ({}): a key of it would never be published",
                            domain.name,
                            a.as_str(),
                            configured.join(", ")
                        )));
                    }
                    Some(a) => vec![a],
                    None => algorithms.clone(),
                };
                selected.push((domain, wanted));
            }
        }
    }
    if selected.is_empty() {
        return Err(EngineError::Usage(format!(
            "no domain in {} has automatic DKIM keys (dkimManagement.automatic)",
            loaded.path.display()
        )));
    }
    let opened = RequestStore::open(request.store.as_ref(), &request.state_dir).await?;
    let result = generate_in(&opened.store, &selected, request.now_unix).await;
    opened.close().await;
    result
}

pub(crate) async fn generate_in(
    store: &mailzone_store::Store,
    selected: &[(&mailzone_records::Domain, Vec<DkimAlgorithm>)],
    now: i64,
) -> Result<Vec<GeneratedKey>, EngineError> {
    let mut out = Vec::new();
    for (domain, algorithms) in selected {
        let DkimManagement::Automatic {
            selector_template, ..
        } = &domain.dkim_management
        else {
            continue;
        };
        let name = domain.name.as_str();
        let dns_automatic = publishes_dkim(domain);
        for &algorithm in algorithms {
            let keys = store.dkim_keys(name).await?;
            let waiting = keys
                .iter()
                .find(|k| k.algorithm == algorithm && k.stage == DkimStage::Pending)
                .cloned();
            let (stored, created) = match waiting {
                Some(k) => (k, false),
                None => {
                    let Some(kept) =
                        new_pending_key(store, domain, &keys, algorithm, selector_template, now)
                            .await?
                    else {
                        return Err(EngineError::Usage(format!(
                            "{name}: no delegated DKIM slot of {} is free: both hold published keys, or the retired key's record was withdrawn less than a TTL ago; a new key can be made once the retiring one is retired and withdrawn (`mailzone dkim rotate`)",
                            algorithm.as_str()
                        )));
                    };
                    (kept, true)
                }
            };
            let key = DkimPrivateKey::from_pem(&stored.private_key_pem).map_err(|e| {
                EngineError::Usage(format!(
                    "the stored DKIM key {} of {name} is unusable: {e}",
                    stored.selector
                ))
            })?;
            out.push(GeneratedKey {
                domain: name.to_string(),
                selector: stored.selector.clone(),
                algorithm,
                stage: DkimStage::Pending.as_str(),
                created,
                dns_automatic,
                owner: domain
                    .dkim_key_record_name(&stored.selector)
                    .map(|n| n.as_str().to_string())
                    .map_err(|e| EngineError::Usage(format!("{name}: {e}")))?,
                record: key.public_key().txt_value(),
            });
        }
    }
    Ok(out)
}

/// A key that changed stage in a way the MTA must hear about: it became `Active` (sign
/// with it from now on; `replaces` are the keys it took over from, now `Retiring`) or was
/// withdrawn from DNS (`Retired`).
#[derive(Debug, Clone)]
pub struct KeyChange {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub stage: DkimStage,
    pub replaces: Vec<String>,
}

/// The rotation promotion, shared by `dkim rotate`, `apply` and the service's
/// tasks: every `Pending` key of `domain` whose record is confirmed served (`served` says
/// which selectors; `None`: all, the operator confirmed them) becomes `Active`, and the
/// `Active` keys of its algorithm become `Retiring` for `retire_after`.
pub(crate) async fn promote_served(
    store: &mailzone_store::Store,
    domain: &mailzone_records::Domain,
    served: Option<&std::collections::BTreeSet<String>>,
    now: i64,
) -> Result<Vec<KeyChange>, EngineError> {
    let DkimManagement::Automatic { rotation, .. } = &domain.dkim_management else {
        return Ok(Vec::new());
    };
    let name = domain.name.as_str();
    let keys = store.dkim_keys(name).await?;
    let mut changes = Vec::new();
    for pending in keys
        .iter()
        .filter(|k| k.stage == DkimStage::Pending && served.is_none_or(|s| s.contains(&k.selector)))
    {
        let mut replaces = Vec::new();
        for old in keys
            .iter()
            .filter(|k| k.algorithm == pending.algorithm && k.stage == DkimStage::Active)
        {
            let next = Some(crate::clock::after(now, rotation.retire_after));
            store
                .set_dkim_stage(name, &old.selector, DkimStage::Retiring, next)
                .await?;
            replaces.push(old.selector.clone());
        }
        crate::crash::point("dkim-promotion");
        let next = Some(crate::clock::after(
            pending.created_at,
            rotation.rotate_after,
        ));
        store
            .set_dkim_stage(name, &pending.selector, DkimStage::Active, next)
            .await?;
        tracing::info!(
            domain = name,
            selector = pending.selector,
            "DKIM key served everywhere: now active"
        );
        changes.push(KeyChange {
            selector: pending.selector.clone(),
            algorithm: pending.algorithm,
            stage: DkimStage::Active,
            replaces,
        });
    }
    Ok(changes)
}
