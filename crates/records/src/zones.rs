//! The planned records grouped by the zone that publishes them and the DNS server that
//! writes that zone, with delegated DKIM keys in the DKIM provider's zone: the unit that
//! `plan` and `apply` read, diff and update, and the names in it that a run answers for.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::hash_index::HashIndex;
use crate::name::{Name, NameError};
use crate::record::{DesiredRecord, RecordPurpose};
use crate::zonefile;
use crate::{Config, DnsManagement, DnsServer, Domain};

/// One domain's desired records.
#[derive(Debug, Clone)]
pub struct DomainRecords {
    pub domain: Domain,
    pub records: Vec<DesiredRecord>,
}

/// One zone to reconcile: every selected domain that publishes into it through `server`.
#[derive(Debug)]
pub struct ZonePlan<'a> {
    pub zone: Name,
    pub server: &'a DnsServer,
    pub domains: Vec<Name>,
    /// Sorted and without repeats.
    pub desired: Vec<DesiredRecord>,
    pub managed_types: Vec<RecordPurpose>,
    /// The subtrees whose ledger entries this run answers for: a domain's whole zone, or
    /// in a DKIM provider zone only `<domain>.<delegateTo>` of the selected domains (the
    /// keys of the other customers there are never deleted by a run that did not plan them).
    pub scope: Vec<Name>,
    /// The other domains publishing into this zone through this server that the run did
    /// not select: a name whose most specific domain is one of them is theirs, and this run
    /// neither deletes nor replaces what they published there.
    pub unselected: Vec<Name>,
}

/// The zones of a run, and the selected domains it leaves alone because their DNS is
/// managed by hand.
#[derive(Debug, Default)]
pub struct ZonePlans<'a> {
    pub zones: Vec<ZonePlan<'a>>,
    pub manual: Vec<Name>,
}

impl ZonePlan<'_> {
    /// Whether this run answers for what the ledger holds at `name`: inside its scope, and
    /// not claimed by a domain the run did not select. The most specific claim wins: a
    /// selected domain or scope (a delegated key's `<domain>.<delegateTo>`) against an
    /// unselected domain, the unselected one on a tie (a run for `sub.example.org` leaves
    /// `example.org`'s apex alone, and `example.org`'s run leaves `sub.example.org`'s
    /// records). A name no domain claims (a mail host's address in a zone that is itself
    /// no domain) belongs to each run.
    pub fn owns(&self, name: &Name) -> bool {
        if !self.scope.iter().any(|s| name.is_within(s)) {
            return false;
        }
        let selected = self.domains.iter().chain(&self.scope).map(|d| (d, true));
        let unselected = self.unselected.iter().map(|d| (d, false));
        selected
            .chain(unselected)
            .filter(|(d, _)| name.is_within(d))
            .max_by_key(|(d, is_selected)| (d.as_str().len(), !is_selected))
            .is_none_or(|(_, is_selected)| is_selected)
    }

    /// A digest of what the zone should hold: if it and the zone's serial are unchanged
    /// since the last run, the zone is in sync without reading it.
    pub fn desired_digest(&self) -> String {
        let mut hasher = Sha256::new();
        let mut types: Vec<&str> = self.managed_types.iter().map(|t| t.name()).collect();
        types.sort_unstable();
        hasher.update(types.join(",").as_bytes());
        let mut line = String::with_capacity(256);
        for d in &self.desired {
            line.clear();
            zonefile::write_record_line(&mut line, &d.record, 0);
            hasher.update(line.as_bytes());
            hasher.update(d.purpose.name().as_bytes());
            hasher.update(b"\n");
        }
        zonefile::hex(&hasher.finalize())
    }

    /// Adds one domain's share: its records, the types it publishes, the subtree it
    /// answers for.
    fn add(&mut self, domain: &Name, share: Share) {
        push_new(&mut self.domains, [domain.clone()]);
        self.desired.extend(share.desired);
        push_new(&mut self.managed_types, share.managed);
        push_new(&mut self.scope, [share.scope]);
    }
}

/// Appends the items `list` does not hold yet, keeping its order (lists of a few entries:
/// a scan is cheaper than a set).
fn push_new<T: PartialEq>(list: &mut Vec<T>, items: impl IntoIterator<Item = T>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// What one domain publishes into one zone.
struct Share {
    desired: Vec<DesiredRecord>,
    managed: Vec<RecordPurpose>,
    scope: Name,
}

/// A delegated DKIM scope (`<domain>.<delegateTo>`) that is no valid name.
#[derive(Debug, thiserror::Error)]
#[error("{domain}: {error}")]
pub struct ZonePlanError {
    pub domain: Name,
    pub error: NameError,
}

/// Groups the planned domains by (zone, DNS server), keeping only the record types each
/// domain publishes, narrowed by `types` when it is not empty. Zones come in the order
/// their first domain was planned. `publishing` is [`Publishing::of`] the same config.
///
/// The config must have passed validation: every `dnsServer` and `delegateDnsServer` it
/// names exists.
pub fn plan_zones<'a>(
    config: &'a Config,
    publishing: &Publishing,
    planned: &[DomainRecords],
    types: &[RecordPurpose],
) -> Result<ZonePlans<'a>, ZonePlanError> {
    let planned = planned.iter().map(|d| (&d.domain, d.records.as_slice()));
    group_by_zone(config, publishing, planned, types)
}

/// The zones `domains` publish into, as [`plan_zones`] would group them, without their
/// desired records: what a run needs to know of a zone before deciding whether its
/// records must be planned at all (see [`crate::planner::inputs`]).
pub fn outline_zones<'a>(
    config: &'a Config,
    publishing: &Publishing,
    domains: &[&Domain],
    types: &[RecordPurpose],
) -> Result<ZonePlans<'a>, ZonePlanError> {
    let unplanned = domains.iter().map(|&d| (d, &[] as &[DesiredRecord]));
    group_by_zone(config, publishing, unplanned, types)
}

fn group_by_zone<'a, 'd>(
    config: &'a Config,
    publishing: &Publishing,
    planned: impl Iterator<Item = (&'d Domain, &'d [DesiredRecord])>,
    types: &[RecordPurpose],
) -> Result<ZonePlans<'a>, ZonePlanError> {
    let selected = |t: RecordPurpose| types.is_empty() || types.contains(&t);
    let mut grouping = Grouping::default();
    let mut manual = Vec::new();
    for (domain, records) in planned {
        let name = &domain.name;
        // Delegated DKIM keys live in the provider's zone, published through its DNS
        // server whatever the domain's own DNS management (the customer may hold the
        // CNAMEs by hand).
        let delegated = domain.dkim_management.delegation();
        let (keys, own): (Vec<&DesiredRecord>, Vec<&DesiredRecord>) =
            records.iter().partition(|r| {
                delegated.is_some_and(|d| {
                    r.purpose == RecordPurpose::Dkim && r.record.name.is_within(&d.zone)
                })
            });
        if let Some(delegation) = delegated
            && selected(RecordPurpose::Dkim)
        {
            let server = config
                .dns_server(&delegation.dns_server)
                .expect("the config validator checked that the delegateDnsServer exists");
            let scope = delegation
                .zone
                .prefixed(name.as_str())
                .map_err(|error| ZonePlanError {
                    domain: name.clone(),
                    error,
                })?;
            let share = Share {
                desired: keys.into_iter().cloned().collect(),
                managed: vec![RecordPurpose::Dkim],
                scope,
            };
            grouping.add(&delegation.zone, server, name, share);
        }
        let DnsManagement::Automatic {
            dns_server,
            publish_records,
        } = &domain.dns_management
        else {
            manual.push(name.clone());
            continue;
        };
        let server = config
            .dns_server(dns_server)
            .expect("the config validator checked that the dnsServer exists");
        let managed: Vec<RecordPurpose> = publish_records
            .iter()
            .copied()
            .filter(|&t| selected(t))
            .collect();
        let desired = own
            .into_iter()
            .filter(|r| managed.contains(&r.purpose))
            .cloned()
            .collect();
        let zone = &domain.zone;
        let share = Share {
            desired,
            managed,
            scope: zone.clone(),
        };
        grouping.add(zone, server, name, share);
    }
    let mut zones = grouping.zones;
    for zone in &mut zones {
        zone.settle(config, publishing);
    }
    Ok(ZonePlans { zones, manual })
}

impl<'a> ZonePlan<'a> {
    /// Takes in `other`, a plan of the same zone and DNS server made from other domains
    /// (a DKIM provider zone is planned batch by batch and published once); [`settle`]
    /// it afterwards.
    ///
    /// [`settle`]: ZonePlan::settle
    pub fn absorb(&mut self, other: ZonePlan<'a>) {
        debug_assert!(self.zone == other.zone && self.server.name == other.server.name);
        push_new(&mut self.domains, other.domains);
        self.desired.extend(other.desired);
        push_new(&mut self.managed_types, other.managed_types);
        push_new(&mut self.scope, other.scope);
    }

    /// Sorts the desired records without repeats and names the domains publishing into
    /// this zone that the plan did not select.
    pub fn settle(&mut self, config: &Config, publishing: &Publishing) {
        self.desired
            .sort_by(|a, b| (&a.record, a.purpose).cmp(&(&b.record, b.purpose)));
        self.desired.dedup();
        self.unselected = publishing
            .domains(config, &self.zone, &self.server.name)
            .filter(|name| !self.domains.contains(name))
            .cloned()
            .collect();
    }
}

/// The zones being built, with an index by (zone, DNS server) so that adding a domain is
/// not a scan of every zone so far (quadratic over thousands of zones).
#[derive(Default)]
struct Grouping<'a> {
    zones: Vec<ZonePlan<'a>>,
    index: HashMap<(Name, String), usize>,
}

impl<'a> Grouping<'a> {
    fn add(&mut self, zone: &Name, server: &'a DnsServer, domain: &Name, share: Share) {
        let key = (zone.clone(), server.name.clone());
        let at = *self.index.entry(key).or_insert_with(|| {
            self.zones.push(ZonePlan {
                zone: zone.clone(),
                server,
                domains: Vec::new(),
                desired: Vec::new(),
                managed_types: Vec::new(),
                scope: Vec::new(),
                unselected: Vec::new(),
            });
            self.zones.len() - 1
        });
        self.zones[at].add(domain, share);
    }
}

/// The configured domains under automatic management, by (zone, DNS server), as positions
/// in `config.domains`: built once per run (or per loaded config), so that finding the
/// domains a plan leaves out of each zone is not a scan of every domain per zone
/// (quadratic in the number of domains), nor a rebuild per batch of zones.
#[derive(Debug, Default)]
pub struct Publishing {
    by_zone: HashIndex,
}

impl Publishing {
    pub fn of(config: &Config) -> Publishing {
        let zones = config.domains.iter().enumerate();
        Publishing {
            by_zone: HashIndex::new(zones.filter_map(|(at, d)| own_zone(d).map(|key| (at, key)))),
        }
    }

    /// The names of the domains publishing into `zone` through `server`, in config order.
    fn domains<'c>(
        &self,
        config: &'c Config,
        zone: &Name,
        server: &str,
    ) -> impl Iterator<Item = &'c Name> {
        self.by_zone
            .candidates((zone, server))
            .filter_map(|at| config.domains.get(at))
            .filter(move |d| own_zone(d) == Some((zone, server)))
            .map(|d| &d.name)
    }
}

/// The (zone, DNS server) a domain publishes its own records into, `None` under manual DNS
/// management: the domains sharing one are planned and published together.
pub fn own_zone(domain: &Domain) -> Option<(&Name, &str)> {
    match &domain.dns_management {
        DnsManagement::Automatic { dns_server, .. } => Some((&domain.zone, dns_server.as_str())),
        DnsManagement::Manual => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::RData;
    use crate::record::Record;

    /// `example.org` and `sub.example.org` share the zone `example.org` on `primary`;
    /// `hand.test` is managed by hand.
    const CONFIG: &str = r#"
[server]
hostname = "mail.example.org"
ipv4 = ["192.0.2.1"]

[dnsServer]
primary = { kind = "rfc2136", host = "127.0.0.1" }

[domain]
"example.org".dnsManagement.automatic = { dnsServer = "primary" }
"sub.example.org".dnsManagement.automatic = { dnsServer = "primary", origin = "example.org" }
"hand.test" = {}
"#;

    fn config() -> Config {
        crate::config::parse(CONFIG, Path::new("/etc/mailzone")).unwrap()
    }

    fn name(s: &str) -> Name {
        Name::owner(s).unwrap()
    }

    fn desired(purpose: RecordPurpose, owner: &str, data: RData) -> DesiredRecord {
        DesiredRecord {
            purpose,
            record: Record {
                name: name(owner),
                ttl: 3600,
                data,
            },
        }
    }

    /// Each named domain of the config with an MX and an SPF record at its apex.
    fn planned(config: &Config, domains: &[&str]) -> Vec<DomainRecords> {
        domains
            .iter()
            .map(|d| DomainRecords {
                domain: config.domain(&name(d)).unwrap().clone(),
                records: vec![
                    desired(
                        RecordPurpose::Spf,
                        d,
                        RData::Txt(b"v=spf1 mx -all".to_vec()),
                    ),
                    desired(
                        RecordPurpose::Mx,
                        d,
                        RData::Mx {
                            preference: 10,
                            exchange: name("mail.example.org"),
                        },
                    ),
                ],
            })
            .collect()
    }

    #[test]
    fn plans_of_one_zone_made_apart_and_absorbed_equal_the_plan_made_at_once() {
        let config = config();
        let publishing = Publishing::of(&config);
        let at_once = plan_zones(
            &config,
            &publishing,
            &planned(&config, &["example.org", "sub.example.org"]),
            &[],
        )
        .unwrap();
        let mut first = plan_zones(
            &config,
            &publishing,
            &planned(&config, &["example.org"]),
            &[],
        )
        .unwrap()
        .zones
        .remove(0);
        let second = plan_zones(
            &config,
            &publishing,
            &planned(&config, &["sub.example.org"]),
            &[],
        )
        .unwrap()
        .zones
        .remove(0);
        assert_eq!(first.unselected, [name("sub.example.org")]);
        first.absorb(second);
        first.settle(&config, &publishing);
        let whole = &at_once.zones[0];
        assert_eq!(first.domains, whole.domains);
        assert_eq!(first.desired, whole.desired, "sorted, without repeats");
        assert_eq!(first.scope, whole.scope);
        assert!(first.unselected.is_empty(), "{:?}", first.unselected);
        assert_eq!(first.desired_digest(), whole.desired_digest());
    }

    #[test]
    fn an_outline_is_the_plan_without_its_records() {
        let config = config();
        let publishing = Publishing::of(&config);
        let selected = ["sub.example.org", "hand.test"];
        let planned = plan_zones(&config, &publishing, &planned(&config, &selected), &[]).unwrap();
        let domains: Vec<&Domain> = selected
            .iter()
            .map(|d| config.domain(&name(d)).unwrap())
            .collect();
        let outline = outline_zones(&config, &publishing, &domains, &[]).unwrap();
        assert_eq!(outline.manual, planned.manual);
        assert_eq!(outline.zones.len(), 1);
        let (outline, planned) = (&outline.zones[0], &planned.zones[0]);
        assert!(outline.desired.is_empty(), "{:?}", outline.desired);
        assert!(!planned.desired.is_empty());
        assert_eq!(
            (&outline.zone, &outline.server.name, &outline.domains),
            (&planned.zone, &planned.server.name, &planned.domains)
        );
        assert_eq!(outline.managed_types, planned.managed_types);
        assert_eq!(outline.scope, planned.scope);
        assert_eq!(outline.unselected, [name("example.org")]);
        assert_eq!(outline.unselected, planned.unselected);
    }

    #[test]
    fn domains_sharing_a_zone_and_server_make_one_zone_plan() {
        let config = config();
        let planned = planned(&config, &["example.org", "sub.example.org", "hand.test"]);
        let plans = plan_zones(&config, &Publishing::of(&config), &planned, &[]).unwrap();
        assert_eq!(plans.manual, [name("hand.test")]);
        assert_eq!(plans.zones.len(), 1, "{plans:?}");
        let zone = &plans.zones[0];
        assert_eq!(zone.zone, name("example.org"));
        assert_eq!(zone.server.name, "primary");
        assert_eq!(zone.domains, [name("example.org"), name("sub.example.org")]);
        assert_eq!(zone.scope, [name("example.org")]);
        assert!(zone.unselected.is_empty());
        assert_eq!(zone.desired.len(), 4);
        assert!(
            zone.desired.windows(2).all(|w| w[0].record <= w[1].record),
            "desired records come sorted: {:?}",
            zone.desired
        );
    }

    #[test]
    fn types_narrow_what_is_published_and_the_digest_follows() {
        let config = config();
        let planned = planned(&config, &["example.org"]);
        let all = plan_zones(&config, &Publishing::of(&config), &planned, &[]).unwrap();
        let mx = plan_zones(
            &config,
            &Publishing::of(&config),
            &planned,
            &[RecordPurpose::Mx],
        )
        .unwrap();
        let zone = &mx.zones[0];
        assert_eq!(zone.managed_types, [RecordPurpose::Mx]);
        assert!(zone.desired.iter().all(|r| r.purpose == RecordPurpose::Mx));
        assert_eq!(zone.desired.len(), 1);
        assert_ne!(all.zones[0].desired_digest(), zone.desired_digest());
        assert_eq!(
            all.zones[0].desired_digest(),
            plan_zones(&config, &Publishing::of(&config), &planned, &[])
                .unwrap()
                .zones[0]
                .desired_digest()
        );
    }

    #[test]
    fn a_run_answers_only_for_the_names_of_the_domains_it_selected() {
        let config = config();
        let sub_only = plan_zones(
            &config,
            &Publishing::of(&config),
            &planned(&config, &["sub.example.org"]),
            &[],
        )
        .unwrap();
        let zone = &sub_only.zones[0];
        assert_eq!(zone.unselected, [name("example.org")]);
        assert!(zone.owns(&name("sub.example.org")));
        assert!(zone.owns(&name("_dmarc.sub.example.org")));
        assert!(!zone.owns(&name("example.org")), "the unselected apex");
        assert!(
            !zone.owns(&name("mail.example.org")),
            "a tie between the scope and an unselected domain goes to the unselected one"
        );
        assert!(!zone.owns(&name("other.test")), "outside the scope");

        let apex_only = plan_zones(
            &config,
            &Publishing::of(&config),
            &planned(&config, &["example.org"]),
            &[],
        )
        .unwrap();
        let zone = &apex_only.zones[0];
        assert_eq!(zone.unselected, [name("sub.example.org")]);
        assert!(zone.owns(&name("example.org")));
        assert!(zone.owns(&name("mail.example.org")));
        assert!(!zone.owns(&name("_dmarc.sub.example.org")));
    }
}
