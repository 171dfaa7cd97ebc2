//! Generated traffic for tests, back-tests and the benchmark: clean customers plus injected
//! attacks (account takeover, card testing, bust-out, shared devices and addresses,
//! impossible travel, blocked-list hits), with fraud labels. Deterministic from a seed.

use crate::backtest::Label;
use crate::event::{EntityField, Event, EventKind, GeoPoint, ProfileField};
use crate::list::{ListEntry, ListKind};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tally_core::{Amount, Currency, SplitMix64};

/// The attack kinds the generator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    AccountTakeover,
    CardTesting,
    BustOut,
    SharedDevice,
    SharedAddress,
    ImpossibleTravel,
    BlockedList,
}

impl AttackKind {
    pub const ALL: [AttackKind; 7] = [
        AttackKind::AccountTakeover,
        AttackKind::CardTesting,
        AttackKind::BustOut,
        AttackKind::SharedDevice,
        AttackKind::SharedAddress,
        AttackKind::ImpossibleTravel,
        AttackKind::BlockedList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttackKind::AccountTakeover => "account_takeover",
            AttackKind::CardTesting => "card_testing",
            AttackKind::BustOut => "bust_out",
            AttackKind::SharedDevice => "shared_device",
            AttackKind::SharedAddress => "shared_address",
            AttackKind::ImpossibleTravel => "impossible_travel",
            AttackKind::BlockedList => "blocked_list",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioConfig {
    pub seed: u64,
    pub customers: usize,
    pub days: u32,
    /// Instances of each attack kind.
    pub attacks_per_kind: usize,
    pub start: Timestamp,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 1,
            customers: 1000,
            days: 7,
            attacks_per_kind: 5,
            start: Timestamp::from_second(1_790_000_000).unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }
}

/// Generated history: events in time order, fraud labels, and the block list entries the
/// blocked-list attacks run into.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub events: Vec<Event>,
    pub labels: Vec<Label>,
    pub list_entries: Vec<ListEntry>,
}

const CITIES: &[(f64, f64)] = &[
    (39.9042, 116.4074), // Beijing
    (31.2304, 121.4737), // Shanghai
    (23.1291, 113.2644), // Guangzhou
    (22.5431, 114.0579), // Shenzhen
    (30.5728, 104.0668), // Chengdu
    (30.2741, 120.1551), // Hangzhou
    (34.3416, 108.9398), // Xi'an
    (29.5630, 106.5516), // Chongqing
];

struct Customer {
    id: String,
    device: String,
    card: String,
    address: String,
    ip: String,
    city: usize,
}

struct Builder {
    random: SplitMix64,
    start: Timestamp,
    events: Vec<(Event, Option<(AttackKind, u32)>)>,
    next_attack: u32,
}

impl Builder {
    fn at(&self, offset_seconds: i64) -> Timestamp {
        self.start
            .saturating_add(SignedDuration::from_secs(offset_seconds))
            .unwrap_or(self.start)
    }

    fn cny(minor: i64) -> Option<Amount> {
        Some(Amount::new(minor, Currency::CNY))
    }

    fn geo_near(&mut self, city: usize) -> GeoPoint {
        let (lat, lon) = CITIES[city % CITIES.len()];
        GeoPoint {
            lat: lat + self.random.range(-100, 100) as f64 / 1000.0,
            lon: lon + self.random.range(-100, 100) as f64 / 1000.0,
        }
    }

    fn push(&mut self, event: Event, attack: Option<(AttackKind, u32)>) {
        self.events.push((event, attack));
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        kind: EventKind,
        second: i64,
        customer: &str,
        device: &str,
        ip: &str,
        card: Option<&str>,
        address: Option<&str>,
        amount_minor: Option<i64>,
    ) -> Event {
        let mut event = Event::new(String::new(), kind, self.at(second), customer);
        event.device = Some(device.to_string());
        event.ip = Some(ip.to_string());
        event.card = card.map(str::to_string);
        event.address = address.map(str::to_string);
        event.amount = amount_minor.and_then(Self::cny);
        if kind == EventKind::Transaction {
            let merchant = self.random.range(0, 300);
            event.merchant = Some(format!("merchant-{merchant}"));
        }
        event
    }

    fn clean_customer(&mut self, index: usize, days: u32, customers: &[Customer]) {
        let customer = &customers[index];
        let mut device = customer.device.clone();
        let mut address = customer.address.clone();
        let activates = self.random.chance(0.1);
        let day_seconds = 86_400;
        for day in 0..i64::from(days) {
            let base = day * day_seconds + self.random.range(7 * 3600, 22 * 3600);
            if activates && day == 0 {
                let event = self.event(
                    EventKind::CreditActivation,
                    base - 600,
                    &customer.id,
                    &device,
                    &customer.ip,
                    None,
                    None,
                    None,
                );
                self.push(event, None);
            }
            if self.random.chance(0.02) {
                // A new phone: the customer carries on with it.
                device = format!("{}-new{day}", customer.device);
            }
            if self.random.chance(0.6) {
                let mut login = self.event(
                    EventKind::Login,
                    base,
                    &customer.id,
                    &device,
                    &customer.ip,
                    None,
                    None,
                    None,
                );
                login.geo = Some(self.geo_near(customer.city));
                self.push(login, None);
            }
            if self.random.chance(0.01) {
                address = format!("{}-moved{day}", customer.address);
                let mut change = self.event(
                    EventKind::ProfileChange,
                    base + 60,
                    &customer.id,
                    &device,
                    &customer.ip,
                    None,
                    Some(&address),
                    None,
                );
                change.profile_field = Some(ProfileField::Address);
                self.push(change, None);
            }
            if self.random.chance(0.005) {
                let mut change = self.event(
                    EventKind::ProfileChange,
                    base + 90,
                    &customer.id,
                    &device,
                    &customer.ip,
                    None,
                    None,
                    None,
                );
                change.profile_field = Some(ProfileField::Password);
                self.push(change, None);
            }
            let orders = self.random.range(0, 3);
            for order in 0..orders {
                let amount = if self.random.chance(0.03) {
                    self.random.range(100_000, 800_000)
                } else {
                    self.random.range(2_000, 80_000)
                };
                let second = base + 300 + order * self.random.range(600, 7200);
                let event = self.event(
                    EventKind::Transaction,
                    second,
                    &customer.id,
                    &device,
                    &customer.ip,
                    Some(&customer.card),
                    Some(&address),
                    Some(amount),
                );
                self.push(event, None);
            }
            if self.random.chance(0.01) {
                let amount = self.random.range(10_000, 300_000);
                let event = self.event(
                    EventKind::Payout,
                    base + 7200,
                    &customer.id,
                    &device,
                    &customer.ip,
                    Some(&customer.card),
                    None,
                    Some(amount),
                );
                self.push(event, None);
            }
        }
    }

    fn attack_id(&mut self) -> u32 {
        self.next_attack += 1;
        self.next_attack
    }

    fn attack(
        &mut self,
        kind: AttackKind,
        number: usize,
        days: u32,
        customers: &[Customer],
    ) -> Option<ListEntry> {
        let id = self.attack_id();
        let tag = Some((kind, id));
        let span = i64::from(days.max(2)) * 86_400;
        // Attacks start after the first day so that victims have a history.
        let start = self.random.range(86_400 + 3600, span - 3 * 3600);
        let prefix = format!("{}-{number}", kind.as_str());
        let victim = &customers[self.random.range(0, customers.len() as i64) as usize];
        match kind {
            AttackKind::AccountTakeover => {
                let device = format!("{prefix}-device");
                let ip = format!("{prefix}-ip");
                let mut login = self.event(
                    EventKind::Login,
                    start,
                    &victim.id,
                    &device,
                    &ip,
                    None,
                    None,
                    None,
                );
                login.geo = Some(self.geo_near(victim.city + 1));
                self.push(login, tag);
                for (offset, field) in [(300, ProfileField::Password), (480, ProfileField::Phone)] {
                    let mut change = self.event(
                        EventKind::ProfileChange,
                        start + offset,
                        &victim.id,
                        &device,
                        &ip,
                        None,
                        None,
                        None,
                    );
                    change.profile_field = Some(field);
                    self.push(change, tag);
                }
                let amount = self.random.range(300_000, 900_000);
                let order = self.event(
                    EventKind::Transaction,
                    start + 1200,
                    &victim.id,
                    &device,
                    &ip,
                    Some(&victim.card),
                    Some(&format!("{prefix}-drop-address")),
                    Some(amount),
                );
                self.push(order, tag);
            }
            AttackKind::CardTesting => {
                let device = format!("{prefix}-device");
                let card = format!("{prefix}-stolen-card");
                let tries = self.random.range(8, 16);
                for attempt in 0..tries {
                    let mule = format!("{prefix}-mule-{}", attempt % 3);
                    let amount = self.random.range(100, 1000);
                    let event = self.event(
                        EventKind::Transaction,
                        start + attempt * 20,
                        &mule,
                        &device,
                        &format!("{prefix}-ip"),
                        Some(&card),
                        None,
                        Some(amount),
                    );
                    self.push(event, tag);
                }
            }
            AttackKind::BustOut => {
                let customer = format!("{prefix}-customer");
                let device = format!("{prefix}-device");
                let address = format!("{prefix}-address");
                let activation = self.event(
                    EventKind::CreditActivation,
                    start,
                    &customer,
                    &device,
                    "bust-ip",
                    None,
                    None,
                    None,
                );
                self.push(activation, tag);
                let orders = self.random.range(6, 9);
                for order in 0..orders {
                    let amount = self.random.range(250_000, 500_000);
                    let event = self.event(
                        EventKind::Transaction,
                        start + 3600 + order * 1800,
                        &customer,
                        &device,
                        "bust-ip",
                        Some(&format!("{prefix}-card")),
                        Some(&address),
                        Some(amount),
                    );
                    self.push(event, tag);
                }
            }
            AttackKind::SharedDevice => {
                let device = format!("{prefix}-farm-device");
                for account in 0..self.random.range(6, 9) {
                    let customer = format!("{prefix}-account-{account}");
                    let second = start + account * 1800;
                    let login = self.event(
                        EventKind::Login,
                        second,
                        &customer,
                        &device,
                        "farm-ip",
                        None,
                        None,
                        None,
                    );
                    self.push(login, tag);
                    let order = self.event(
                        EventKind::Transaction,
                        second + 120,
                        &customer,
                        &device,
                        "farm-ip",
                        Some(&format!("{prefix}-card-{account}")),
                        Some(&format!("{prefix}-address-{account}")),
                        Some(30_000),
                    );
                    self.push(order, tag);
                }
            }
            AttackKind::SharedAddress => {
                let address = format!("{prefix}-drop-address");
                for account in 0..self.random.range(6, 9) {
                    let customer = format!("{prefix}-account-{account}");
                    let amount = self.random.range(50_000, 200_000);
                    let order = self.event(
                        EventKind::Transaction,
                        start + account * 3600,
                        &customer,
                        &format!("{prefix}-device-{account}"),
                        &format!("{prefix}-ip-{account}"),
                        Some(&format!("{prefix}-card-{account}")),
                        Some(&address),
                        Some(amount),
                    );
                    self.push(order, tag);
                }
            }
            AttackKind::ImpossibleTravel => {
                let mut home = self.event(
                    EventKind::Login,
                    start,
                    &victim.id,
                    &victim.device,
                    &victim.ip,
                    None,
                    None,
                    None,
                );
                home.geo = Some(self.geo_near(victim.city));
                self.push(home, None);
                let far = (victim.city + 2) % CITIES.len();
                let far = if (far as i64 - victim.city as i64).abs() < 1 {
                    far + 1
                } else {
                    far
                };
                let second = start + self.random.range(600, 2400);
                let mut away = self.event(
                    EventKind::Login,
                    second,
                    &victim.id,
                    &format!("{prefix}-device"),
                    &format!("{prefix}-ip"),
                    None,
                    None,
                    None,
                );
                away.geo = Some(GeoPoint {
                    lat: CITIES[far % CITIES.len()].0 + 12.0,
                    lon: CITIES[far % CITIES.len()].1 - 10.0,
                });
                self.push(away, tag);
            }
            AttackKind::BlockedList => {
                let device = format!("{prefix}-known-fraud-device");
                let entry = ListEntry {
                    kind: ListKind::Block,
                    field: EntityField::Device,
                    value: device.clone(),
                    reason: "confirmed fraud device".to_string(),
                    source: "manual".to_string(),
                    added_at: self.start,
                    expires_at: None,
                };
                let amount = self.random.range(10_000, 100_000);
                let order = self.event(
                    EventKind::Transaction,
                    start,
                    &format!("{prefix}-customer"),
                    &device,
                    &format!("{prefix}-ip"),
                    Some(&format!("{prefix}-card")),
                    Some(&format!("{prefix}-address")),
                    Some(amount),
                );
                self.push(order, tag);
                return Some(entry);
            }
        }
        None
    }
}

/// Generates a scenario. The same config always gives the same scenario.
pub fn generate(config: &ScenarioConfig) -> Scenario {
    let mut builder = Builder {
        random: SplitMix64::new(config.seed),
        start: config.start,
        events: Vec::new(),
        next_attack: 0,
    };
    let customers: Vec<Customer> = (0..config.customers.max(1))
        .map(|index| {
            // About one household in ten shares a device or an address between two people.
            let household = if index % 10 == 1 { index - 1 } else { index };
            Customer {
                id: format!("customer-{index}"),
                device: format!("device-{household}"),
                card: format!("card-{index}"),
                address: format!("address-{household}"),
                ip: format!("ip-{}", index % 5000),
                city: index % CITIES.len(),
            }
        })
        .collect();
    for index in 0..customers.len() {
        builder.clean_customer(index, config.days, &customers);
    }
    let mut list_entries = Vec::new();
    for kind in AttackKind::ALL {
        for number in 0..config.attacks_per_kind {
            if let Some(entry) = builder.attack(kind, number, config.days, &customers) {
                list_entries.push(entry);
            }
        }
    }
    builder.events.sort_by_key(|(event, _)| event.at);
    let mut events = Vec::with_capacity(builder.events.len());
    let mut labels = Vec::new();
    for (sequence, (mut event, attack)) in builder.events.into_iter().enumerate() {
        event.id = format!("event-{sequence:08}");
        if let Some((kind, attack_id)) = attack {
            labels.push(Label {
                event_id: event.id.clone(),
                fraud: true,
                attack: Some(kind.as_str().to_string()),
                attack_id: Some(attack_id),
            });
        }
        events.push(event);
    }
    Scenario {
        events,
        labels,
        list_entries,
    }
}
