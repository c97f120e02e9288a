//! Rule processor throughput: our XSLT interpreter (`drehscheibe-xslt`)
//! against libxslt (`xsltproc`), per message, on the same stylesheets and
//! inputs, measured in one run.
//!
//! Run with `cargo bench --bench transform` (see `docs/benchmarks.md`);
//! `cargo test --benches` runs a smoke version (small inputs, a few
//! iterations, outputs still compared).
//!
//! Inputs are generated deterministically: XGewerbeanzeige 2.1
//! Gewerbemeldungen (`sta.gewerbemeldung.0100`) with as many Meldungen
//! (`satz`) as it takes to reach ~5 KB (small), ~50 KB (medium) and
//! ~5 MB (large). Stylesheets:
//! - `fachverfahren`: the shipped rule
//!   `rules/gewerbeanmeldung/2.0.0/fachverfahren.xsl` (XSLT 1.0, with an
//!   `xsl:include`, named templates, modes, `local-name()` tests);
//! - `identity`: `benches/fixtures/identity.xsl`, an identity transform
//!   with tweaks (drop, rename, rewrite text, `xsl:number`, a global param);
//! - `statistik`: `benches/fixtures/statistik.xsl`, Muenchian grouping with
//!   `xsl:key`/`key()`, sorting (text, numeric descending),
//!   `format-number` with a decimal format;
//! - `minimal`: `benches/fixtures/minimal.xsl`, next to no work (one
//!   `count()`, a one-element result): the floor, i.e. parse + set-up +
//!   serialization;
//!
//! and, on a generated Meldewesen export (persons with Gemeinde, Straße,
//! amounts; same three sizes, so `large` is a 5 MB export):
//! - `muenchian`: `benches/fixtures/muenchian.xsl`, Muenchian grouping by
//!   Gemeinde (`xsl:key` + `generate-id()`), count and sum per group, and
//!   the streets of each Gemeinde grouped by a composite key;
//! - `csv`: `benches/fixtures/csv.xsl`, `xsl:output method="text"`, one
//!   CSV record per person with the money calculation
//!   `format-number(number(@betrag) * (100 - number(@rabatt)) div 100, '0.00')`;
//! - `recursive`: `benches/fixtures/recursive.xsl`, fixed-width text
//!   records built by recursive named templates (padding one character
//!   per call, 300-deep rule lines, a list of payments summed one item
//!   per call).
//!
//! Per message, for both processors: parse the input + transform +
//! serialize the result; compiling the stylesheet is excluded (the hub
//! compiles a rule once and caches it).
//!
//! - **ours**: `Stylesheet::compile_file` once, one warm-up run (it fills
//!   the per-thread XPath program cache), then `std::fs::read` of the input
//!   + `Stylesheet::transform_bytes` in a loop; mean wall time.
//! - **libxslt in-process**: `xsltproc --timing --repeat [--repeat] STYLE
//!   INPUT INPUT ...` (the input named K times = K blocks). For each block
//!   xsltproc prints `Parsing document … took P ms`, `Applying stylesheet R
//!   times took A ms` and `Saving result took S ms`. The timed repeat loop
//!   applies the stylesheet R times and re-reads (re-parses) the input
//!   file R-1 times (libxslt's `xsltproc.c`), so P + A covers R parses and
//!   R transforms; only the last result is serialized (S). Per message:
//!   `(ΣP + ΣA) / (K·R) + ΣS / K`. xsltproc truncates each figure to whole
//!   milliseconds, which favours libxslt by < 1 ms per figure (noticeable
//!   only for S on small outputs, which reads 0).
//! - **libxslt margin** (a cross-check without the millisecond truncation):
//!   one `xsltproc STYLE INPUT INPUT …` call naming the input k times
//!   (each copy parsed, transformed and serialized to /dev/null), minus a
//!   call naming it once, divided by k-1, timed with our clock.
//! - **whole process**, both processors: `ours proc` is the wall time of
//!   one `drehscheibe transform --stylesheet STYLE --input INPUT` (the
//!   suite's release binary), mean over the same M runs as xsltproc's.
//! - **xsltproc process**: whole-process wall time of `xsltproc STYLE
//!   INPUT > /dev/null` (start-up, stylesheet compile, parse, transform,
//!   serialize), mean over M runs — what calling xsltproc per message
//!   would cost.
//!
//! Before timing, each case's output is compared with xsltproc's: both are
//! rendered by `benches/fixtures/canonical.xsl` (run with xsltproc: names
//! as `{uri}local`, attributes sorted, whitespace-only text dropped) and
//! must be equal; the bench panics otherwise. Text outputs (`csv`,
//! `recursive`) are compared byte for byte.
//!
//! Environment: `BENCH_SECONDS` (time budget per case for our processor,
//! default 3), `BENCH_SIZES` (comma list of small, medium, large),
//! `BENCH_STYLES` (comma list of fachverfahren, identity, statistik,
//! minimal, muenchian, csv, recursive),
//! `BENCH_OURS_ONLY=1` (skip xsltproc: for profiling), `BENCH_DIR` (write
//! the inputs there and keep them), `BENCH_ROUNDS` (default 5: each case
//! is measured in that many interleaved rounds — ours, libxslt, the two
//! processes, alternating which goes first — and every figure is the
//! median over rounds, so a machine shared with other work loads both
//! sides alike).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drehscheibe_xslt::Stylesheet;

/// The XGewerbeanzeige 2.1 namespace the generated inputs use.
const XGA: &str = "http://www.xgewerbeanzeige.de/spezifikation/2.1";

// ---------------------------------------------------------------------------
// Input generator
// ---------------------------------------------------------------------------

/// A small deterministic pseudo-random generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn uuid(&mut self, upper: bool) -> String {
        let mut hex = String::new();
        for _ in 0..32 {
            let d = self.below(16);
            let c = char::from_digit(d as u32, 16).unwrap();
            hex.push(if upper { c.to_ascii_uppercase() } else { c });
        }
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

const VORNAMEN: &[&str] = &[
    "Anna", "Bernd", "Carla", "Dieter", "Elif", "Frank", "Greta", "Hakan", "Ines", "Jörg",
    "Katrin", "Lukas", "Marta", "Nils", "Olga", "Paul", "Rita", "Stefan", "Tamara", "Uwe",
];
const FAMILIENNAMEN: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Yilmaz",
    "Kowalski",
];
const STRASSEN: &[&str] = &[
    "Karl-Marx-Str.",
    "Spremberger Str.",
    "Brühlstr.",
    "Berliner Platz",
    "Sandower Str.",
    "Thiemstr.",
    "Bahnhofstr.",
    "Am Turm",
    "Stadtring",
    "Ewald-Hase-Str.",
];
const PLZ: &[&str] = &[
    "03042", "03044", "03046", "03048", "03050", "03051", "03052", "03053", "03054", "03055",
];
/// (Schwerpunkt, WZ key, Stichwort)
const TAETIGKEITEN: &[(&str, &str, &str)] = &[
    (
        "Friseur",
        "96021",
        "Friseurgewerbe (Damen- und Herrenfriseursalons)",
    ),
    ("Catering", "56210", "Caterer (Event-)"),
    ("Einzelhandel mit Backwaren", "47241", "Bäckerei-Filiale"),
    ("Softwareentwicklung", "62010", "Programmierung"),
    ("Gebäudereinigung", "81210", "Allgemeine Gebäudereinigung"),
    ("Elektroinstallation", "43210", "Elektroinstallateur"),
    (
        "Gaststätte",
        "56101",
        "Restaurant mit herkömmlicher Bedienung",
    ),
    ("Taxibetrieb", "49320", "Betrieb von Taxis"),
    ("Unternehmensberatung", "70220", "Unternehmensberater"),
    ("Fotografie", "74201", "Fotograf"),
    ("Versandhandel", "47910", "Internethandel"),
    ("Kosmetik", "96022", "Kosmetiksalon"),
];
const WEITERE: &[&str] = &[
    "Verkauf von Zubehör",
    "Beratung",
    "Schulungen",
    "Lieferdienst",
    "Reparaturen",
    "Vermietung von Geräten",
];
const BETRIEBSNAMEN: &[&str] = &[
    "Haarstudio",
    "Backstube",
    "Code-Werkstatt",
    "Blitzblank",
    "Lichtblick Elektro",
    "Zum Goldenen Hirsch",
    "City-Taxi",
    "Kontor",
    "Bildwerk",
    "Paketpunkt",
];

fn header(out: &mut String) {
    let _ = write!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by benches/transform.rs: a Gewerbemeldung with many Meldungen. -->
<xga:sta.gewerbemeldung.0100 xmlns:xga="{XGA}" produkt="Drehscheibe-Bench" produkthersteller="Drehscheibe" produktversion="1" standard="XGewerbeanzeige" version="2.1">
   <xga:nachrichtenkopf>
      <xga:identifikation.nachricht>
         <xga:nachrichtenUUID>3F2504E0-4F89-11D3-9A0C-0305E82C3301</xga:nachrichtenUUID>
         <xga:nachrichtentyp>
            <code>0100</code>
         </xga:nachrichtentyp>
         <xga:erstellungszeitpunkt>2026-11-30T08:00:00+01:00</xga:erstellungszeitpunkt>
      </xga:identifikation.nachricht>
      <xga:autor>
         <xga:behoerdenkennung>
            <xga:praefix listVersionID="7" listURI="urn:xoev-de:bund:bmi:bit:codeliste:dvdv.praefix">
               <code>MELDID</code>
            </xga:praefix>
            <xga:kennung listURI="urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:ags" listVersionID="2018-01-31">
               <code>12052000</code>
            </xga:kennung>
         </xga:behoerdenkennung>
         <xga:behoerdenname>Gewerbeamt Cottbus</xga:behoerdenname>
      </xga:autor>
   </xga:nachrichtenkopf>
"#
    );
}

fn code(out: &mut String, indent: &str, name: &str, list: &str, value: &str) {
    let _ = writeln!(
        out,
        "{indent}<xga:{name} listURI=\"urn:xoev-de:xgewerbeanzeige:codeliste:{list}\" listVersionID=\"1\">\n{indent}   <code>{value}</code>\n{indent}</xga:{name}>"
    );
}

fn anschrift(out: &mut String, indent: &str, rng: &mut Lcg, plz: &str) {
    let strasse = rng.pick(STRASSEN);
    let nr = 1 + rng.below(120);
    let _ = writeln!(
        out,
        "{indent}<xga:anschrift>\n{indent}   <xga:strasse>{strasse}</xga:strasse>\n{indent}   <xga:hausNrVon>{nr}</xga:hausNrVon>\n{indent}   <xga:ort>Cottbus</xga:ort>\n{indent}   <xga:plz>{plz}</xga:plz>\n{indent}   <xga:nationSchluessel>276</xga:nationSchluessel>\n{indent}</xga:anschrift>"
    );
}

fn person(out: &mut String, rng: &mut Lcg, funktion: usize) {
    let vorname = rng.pick(VORNAMEN);
    let familienname = rng.pick(FAMILIENNAMEN);
    let tag = 1 + rng.below(28);
    let monat = 1 + rng.below(12);
    let jahr = 1950 + rng.below(55);
    let i = "            ";
    let _ = writeln!(out, "{i}<xga:beteiligtePerson>");
    code(
        out,
        &format!("{i}   "),
        "personFunktion",
        "funktioneinerperson",
        &funktion.to_string(),
    );
    let _ = writeln!(
        out,
        "{i}   <xga:familienname>{familienname}</xga:familienname>\n{i}   <xga:vorname>{vorname}</xga:vorname>"
    );
    code(
        out,
        &format!("{i}   "),
        "geschlecht",
        "geschlecht",
        &(1 + rng.below(2)).to_string(),
    );
    let _ = writeln!(
        out,
        "{i}   <xga:geburtsdatum>{tag:02}{monat:02}{jahr}</xga:geburtsdatum>\n{i}   <xga:geburtsort>Cottbus</xga:geburtsort>\n{i}   <xga:staatangehoerigkeiten>\n{i}      <xga:staatsangehoerigkeitSchluessel listVersionID=\"2019-04-01\">\n{i}         <code>000</code>\n{i}      </xga:staatsangehoerigkeitSchluessel>\n{i}   </xga:staatangehoerigkeiten>"
    );
    let plz = rng.pick(PLZ);
    anschrift(out, &format!("{i}   "), rng, plz);
    let _ = writeln!(
        out,
        "{i}   <xga:erreichbarkeit>\n{i}      <xga:kanal listVersionID=\"3\" listURI=\"urn:de:xoev:codeliste:erreichbarkeit\">\n{i}         <code>01</code>\n{i}      </xga:kanal>\n{i}      <xga:kennung>{}.{}@example.org</xga:kennung>\n{i}   </xga:erreichbarkeit>\n{i}</xga:beteiligtePerson>",
        vorname.to_lowercase(),
        familienname.to_lowercase()
    );
}

fn satz(out: &mut String, rng: &mut Lcg, nr: usize) {
    let art = match rng.below(10) {
        0..=5 => "anmeldung",
        6..=7 => "ummeldung",
        _ => "abmeldung",
    };
    let (schwerpunkt, schluessel, stichwort) = TAETIGKEITEN[rng.below(TAETIGKEITEN.len())];
    let plz = rng.pick(PLZ);
    let betriebsname = format!("{} {}", rng.pick(BETRIEBSNAMEN), rng.pick(FAMILIENNAMEN));
    let upper = rng.below(4) == 0;
    let uuid = rng.uuid(upper);
    let betrieb_id = if rng.below(8) == 0 {
        format!("GB-{:06}", rng.below(1_000_000))
    } else {
        let upper = rng.below(2) == 0;
        rng.uuid(upper)
    };
    let _ = writeln!(
        out,
        "   <!-- Meldung {nr}: {art} -->\n   <xga:satz>\n      <xga:{art}>\n         <xga:satzErstellung>2026-11-{:02}T10:00:00+01:00</xga:satzErstellung>",
        1 + nr % 28
    );
    code(
        out,
        "         ",
        "istKorrektur",
        "janein",
        if nr % 17 == 5 { "1" } else { "0" },
    );
    let _ = writeln!(
        out,
        "         <xga:gemeindeSchluessel listURI=\"urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:ags\" listVersionID=\"2019-05-31\">\n            <code>12052000</code>\n         </xga:gemeindeSchluessel>\n         <xga:gemeindeMeldungNr>2026 {:05}</xga:gemeindeMeldungNr>\n         <xga:gewerbebetriebID>{betrieb_id}</xga:gewerbebetriebID>\n         <xga:uuid>{uuid}</xga:uuid>\n         <xga:gewerbe>\n            <xga:betrieb>",
        nr
    );
    if rng.below(3) == 0 {
        let _ = writeln!(
            out,
            "               <xga:eingetragenerName>{betriebsname} e.K.</xga:eingetragenerName>\n               <xga:eintragungNr>HRA {}</xga:eintragungNr>\n               <xga:eintragungOrt>Cottbus</xga:eintragungOrt>",
            1000 + rng.below(9000)
        );
        code(out, "               ", "eintragungArt", "registerart", "A");
        code(
            out,
            "               ",
            "rechtsformSchluessel",
            "rechtsformen",
            "170",
        );
    } else {
        let _ = writeln!(
            out,
            "               <xga:geschaeftsbezeichnung>{betriebsname}</xga:geschaeftsbezeichnung>"
        );
        code(
            out,
            "               ",
            "rechtsformSchluessel",
            "rechtsformen",
            "180",
        );
    }
    let _ = writeln!(
        out,
        "            </xga:betrieb>\n            <xga:anzahlVollzeitBeschaeftigte>{}</xga:anzahlVollzeitBeschaeftigte>\n            <xga:anzahlTeilzeitBeschaeftigte>{}</xga:anzahlTeilzeitBeschaeftigte>",
        rng.below(25),
        rng.below(6)
    );
    code(out, "            ", "istReisegewerbe", "janein", "0");
    code(
        out,
        "            ",
        "istNebenerwerb",
        "janein",
        if rng.below(4) == 0 { "1" } else { "0" },
    );
    anschrift(out, "            ", rng, plz);
    person(out, rng, 1);
    if rng.below(3) == 0 {
        person(out, rng, 2);
    }
    let _ = writeln!(
        out,
        "         </xga:gewerbe>\n         <xga:gueltigAb>2026-12-01</xga:gueltigAb>\n         <xga:datumMeldung>2026-11-{:02}</xga:datumMeldung>\n         <xga:taetigkeitenGesamt>\n            <xga:schwerpunkt>\n               <xga:taetigkeitSchwerpunkt>{schwerpunkt}</xga:taetigkeitSchwerpunkt>\n               <xga:taetigkeitSchluessel>{schluessel}</xga:taetigkeitSchluessel>\n               <xga:stichwort>{stichwort}</xga:stichwort>\n            </xga:schwerpunkt>",
        1 + nr % 28
    );
    match rng.below(3) {
        0 => {}
        1 => {
            let _ = writeln!(
                out,
                "            <xga:weitereTaetigkeiten>\n               <xga:taetigkeitenZusammengefasst>{}|{}</xga:taetigkeitenZusammengefasst>\n            </xga:weitereTaetigkeiten>",
                rng.pick(WEITERE),
                rng.pick(WEITERE)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "            <xga:weitereTaetigkeiten>\n               <xga:taetigkeit>\n                  <xga:taetigkeitEinzeln>{}</xga:taetigkeitEinzeln>\n               </xga:taetigkeit>\n            </xga:weitereTaetigkeiten>",
                rng.pick(WEITERE)
            );
        }
    }
    let _ = writeln!(out, "         </xga:taetigkeitenGesamt>");
    match art {
        "anmeldung" => code(
            out,
            "         ",
            "grundAnmeldungSchluessel",
            "grundfueranmeldung",
            "01",
        ),
        "ummeldung" => code(
            out,
            "         ",
            "grundUmmeldungSchluessel",
            "grundfuerummeldung",
            "02",
        ),
        _ => {
            code(
                out,
                "         ",
                "grundAbmeldungSchluessel",
                "grundfuerabmeldung",
                "04",
            );
            code(
                out,
                "         ",
                "ursacheAbmeldungSchluessel",
                "ursachefuerabmeldung",
                "17",
            );
        }
    }
    let _ = writeln!(out, "      </xga:{art}>\n   </xga:satz>");
}

/// A Gewerbemeldung of at least `target` bytes (at least one Meldung).
fn gewerbemeldung(target: usize) -> (String, usize) {
    let mut rng = Lcg(0x5eed_2026);
    let mut out = String::with_capacity(target + 8192);
    header(&mut out);
    let footer = "</xga:sta.gewerbemeldung.0100>\n";
    let mut n = 0;
    while n == 0 || out.len() + footer.len() < target {
        n += 1;
        satz(&mut out, &mut rng, n);
    }
    out.push_str(footer);
    (out, n)
}

/// Gemeinden of the Meldewesen export: (name, Gemeindeschlüssel, PLZ).
const GEMEINDEN: &[(&str, &str, &str)] = &[
    ("Cottbus", "12052000", "03046"),
    ("Forst (Lausitz)", "12071076", "03149"),
    ("Guben", "12071160", "03172"),
    ("Spremberg", "12071372", "03130"),
    ("Lübben (Spreewald)", "12061316", "15907"),
    ("Lübbenau/Spreewald", "12066196", "03222"),
    ("Senftenberg", "12066304", "01968"),
    ("Finsterwalde", "12062140", "03238"),
    ("Peitz", "12071301", "03185"),
    ("Drebkau", "12071057", "03116"),
    ("Burg (Spreewald)", "12071032", "03096"),
    ("Welzow", "12071425", "03119"),
];

/// A Meldewesen export of at least `target` bytes: persons with name,
/// date of birth, address (Gemeinde, Straße) and amounts (`betrag`,
/// `rabatt`, a list of `zahlungen`), for the `muenchian`, `csv` and
/// `recursive` styles. Returns the document and the number of persons.
fn meldewesen(target: usize) -> (String, usize) {
    let mut rng = Lcg(0x4d45_4c44);
    let mut out = String::with_capacity(target + 4096);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<export verfahren=\"meldewesen\" erstellt=\"2026-11-30T08:00:00\">\n",
    );
    let footer = "</export>\n";
    let mut n = 0;
    while n == 0 || out.len() + footer.len() < target {
        n += 1;
        let (gemeinde, schluessel, plz) = GEMEINDEN[rng.below(GEMEINDEN.len())];
        let betrag = rng.below(100_000);
        let rabatt = [0, 0, 5, 10, 15, 20, 25, 30][rng.below(8)];
        let _ = write!(
            out,
            "  <person id=\"P{n:06}\" betrag=\"{}.{:02}\" rabatt=\"{rabatt}\">\n    <name>{}</name>\n    <vorname>{}</vorname>\n    <geburtsdatum>{}-{:02}-{:02}</geburtsdatum>\n    <anschrift gemeinde=\"{gemeinde}\" schluessel=\"{schluessel}\">\n      <strasse>{}</strasse>\n      <hausnummer>{}</hausnummer>\n      <plz>{plz}</plz>\n    </anschrift>\n    <zahlungen>",
            betrag / 100,
            betrag % 100,
            rng.pick(FAMILIENNAMEN),
            rng.pick(VORNAMEN),
            1930 + rng.below(95),
            1 + rng.below(12),
            1 + rng.below(28),
            rng.pick(STRASSEN),
            1 + rng.below(120),
        );
        for k in 0..(5 + rng.below(30)) {
            if k > 0 {
                out.push(' ');
            }
            let cents = rng.below(50_000);
            let _ = write!(out, "{}.{:02}", cents / 100, cents % 100);
        }
        out.push_str("</zahlungen>\n  </person>\n");
    }
    out.push_str(footer);
    (out, n)
}

// ---------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Size {
    Small,
    Medium,
    Large,
}

impl Size {
    fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }
    fn target_bytes(self) -> usize {
        match self {
            Size::Small => 5 * 1024,
            Size::Medium => 50 * 1024,
            Size::Large => 5 * 1024 * 1024,
        }
    }
}

/// The generated input a style runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// [`gewerbemeldung`].
    Gewerbe,
    /// [`meldewesen`].
    Meldewesen,
}

impl Input {
    fn name(self) -> &'static str {
        match self {
            Input::Gewerbe => "gewerbemeldung",
            Input::Meldewesen => "meldewesen",
        }
    }
    fn generate(self, target: usize) -> (String, usize, &'static str) {
        match self {
            Input::Gewerbe => {
                let (xml, n) = gewerbemeldung(target);
                (xml, n, "Meldungen")
            }
            Input::Meldewesen => {
                let (xml, n) = meldewesen(target);
                (xml, n, "persons")
            }
        }
    }
}

struct Style {
    name: &'static str,
    path: PathBuf,
    params: Vec<(&'static str, &'static str)>,
    input: Input,
    /// `xsl:output method="text"`: outputs are compared byte for byte
    /// (not through `canonical.xsl`).
    text: bool,
}

/// How much of the libxslt measurement to do.
struct Plan {
    /// Our processor: time budget, minimum iterations.
    budget: Duration,
    min_iters: usize,
    /// xsltproc in-process: `--repeat` given twice (R = 100) or once (20).
    repeat_twice: bool,
    /// xsltproc in-process: blocks (the input named K times).
    blocks: usize,
    /// xsltproc whole process: runs.
    processes: usize,
    /// xsltproc marginal cost: inputs named in one call.
    marginal_inputs: usize,
    /// Interleaved measurement rounds (`BENCH_ROUNDS`, default 5): the
    /// budget, iterations, processes and marginal inputs are split over
    /// them; each libxslt round uses all `blocks`.
    rounds: usize,
}

struct Row {
    case: String,
    bytes: usize,
    ours_ms: f64,
    ours_iters: usize,
    first_ms: f64,
    lib_ms: Option<f64>,
    marginal_ms: Option<f64>,
    proc_ms: Option<f64>,
    ours_proc_ms: Option<f64>,
}

/// The median of per-round figures.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn mb_per_s(bytes: usize, ms: f64) -> f64 {
    bytes as f64 / 1e6 / (ms / 1e3)
}

fn xsltproc_available() -> bool {
    Command::new("xsltproc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn xsltproc_args(style: &Style) -> Vec<String> {
    let mut args = Vec::new();
    for (name, value) in &style.params {
        args.extend([
            "--stringparam".to_string(),
            name.to_string(),
            value.to_string(),
        ]);
    }
    args
}

/// Runs xsltproc once and returns its output (panics on failure).
fn xsltproc_output(stylesheet: &Path, params: &[String], input: &Path) -> Vec<u8> {
    let out = Command::new("xsltproc")
        .args(params)
        .arg(stylesheet)
        .arg(input)
        .output()
        .expect("run xsltproc");
    assert!(
        out.status.success(),
        "xsltproc {} {} failed: {}",
        stylesheet.display(),
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compares our output with xsltproc's canonically (see the module docs).
fn check_outputs(dir: &Path, case: &str, style: &Style, input: &Path, ours: &[u8]) {
    let canonical = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures/canonical.xsl");
    let theirs = xsltproc_output(&style.path, &xsltproc_args(style), input);
    let ext = if style.text { "txt" } else { "xml" };
    let ours_path = dir.join(format!("{case}.ours.{ext}"));
    let theirs_path = dir.join(format!("{case}.libxslt.{ext}"));
    std::fs::write(&ours_path, ours).unwrap();
    std::fs::write(&theirs_path, &theirs).unwrap();
    let (a, b) = if style.text {
        (
            String::from_utf8(ours.to_vec()).unwrap(),
            String::from_utf8(theirs).unwrap(),
        )
    } else {
        (
            String::from_utf8(xsltproc_output(&canonical, &[], &ours_path)).unwrap(),
            String::from_utf8(xsltproc_output(&canonical, &[], &theirs_path)).unwrap(),
        )
    };
    if a != b {
        let line = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(b.lines().count()));
        panic!(
            "{case}: our output differs from xsltproc's (canonical line {}):\n  ours:    {:?}\n  libxslt: {:?}\n  files: {} {}",
            line + 1,
            a.lines().nth(line),
            b.lines().nth(line),
            ours_path.display(),
            theirs_path.display()
        );
    }
    assert!(
        a.lines().count() >= 3,
        "{case}: suspiciously small output ({} canonical lines)",
        a.lines().count()
    );
}

/// The figure in a `--timing` line: `… took N ms`.
fn took_ms(line: &str) -> f64 {
    line.rsplit_once(" took ")
        .and_then(|(_, t)| t.trim().strip_suffix(" ms"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected xsltproc --timing line: {line}"))
}

/// libxslt in-process ms per message from `xsltproc --timing --repeat`.
fn libxslt_in_process(style: &Style, input: &Path, plan: &Plan) -> f64 {
    let mut cmd = Command::new("xsltproc");
    cmd.arg("--timing").arg("--repeat");
    let repeat = if plan.repeat_twice {
        cmd.arg("--repeat");
        100.0
    } else {
        20.0
    };
    cmd.args(xsltproc_args(style)).arg(&style.path);
    for _ in 0..plan.blocks {
        cmd.arg(input);
    }
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run xsltproc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xsltproc --timing failed: {stderr}");
    let (mut parse, mut apply, mut save, mut blocks) = (0.0, 0.0, 0.0, 0usize);
    for line in stderr.lines() {
        if line.starts_with("Parsing document") {
            parse += took_ms(line);
        } else if line.starts_with("Applying stylesheet") {
            assert!(
                line.contains(&format!(" {} times", repeat as u32)),
                "unexpected: {line}"
            );
            apply += took_ms(line);
            blocks += 1;
        } else if line.starts_with("Saving result") {
            save += took_ms(line);
        }
    }
    assert_eq!(blocks, plan.blocks, "xsltproc --timing output: {stderr}");
    let k = blocks as f64;
    (parse + apply) / (k * repeat) + save / k
}

/// libxslt's marginal cost per message, ms: the wall time of one xsltproc
/// call naming the input `k` times (each copy is parsed, transformed and
/// serialized to /dev/null) minus that of a call naming it once, divided
/// by `k - 1`. Measured with our clock, so without xsltproc's millisecond
/// truncation.
fn xsltproc_marginal(style: &Style, input: &Path, k: usize) -> f64 {
    let args = xsltproc_args(style);
    let timed = |copies: usize| {
        let mut cmd = Command::new("xsltproc");
        cmd.args(&args).arg(&style.path);
        for _ in 0..copies {
            cmd.arg(input);
        }
        let started = Instant::now();
        let status = cmd.stdout(Stdio::null()).status().expect("run xsltproc");
        assert!(status.success());
        started.elapsed().as_secs_f64() * 1e3
    };
    let _ = timed(1);
    // the cheaper of two runs each: start-up noise only ever adds
    let one = timed(1).min(timed(1));
    let many = timed(k).min(timed(k));
    (many - one).max(0.0) / (k - 1) as f64
}

/// Whole-process wall time of `xsltproc STYLE INPUT > /dev/null`, ms.
fn xsltproc_process(style: &Style, input: &Path, runs: usize) -> f64 {
    let mut args = xsltproc_args(style);
    args.push(style.path.display().to_string());
    args.push(input.display().to_string());
    process_ms(Path::new("xsltproc"), &args, runs)
}

/// Whole-process wall time of `drehscheibe transform --stylesheet STYLE
/// --input INPUT > /dev/null` (start-up, stylesheet compile, parse,
/// transform, serialize), ms.
fn ours_process(style: &Style, input: &Path, runs: usize) -> f64 {
    let mut args = vec![
        "transform".to_string(),
        "--stylesheet".to_string(),
        style.path.display().to_string(),
        "--input".to_string(),
        input.display().to_string(),
    ];
    for (name, value) in &style.params {
        args.push(format!("--param={name}={value}"));
    }
    process_ms(&drehscheibe_suite::drehscheibe_bin(), &args, runs)
}

/// Mean wall time of `runs` runs of `program args > /dev/null`, after one
/// untimed run (page cache, dynamic loader), ms.
fn process_ms(program: &Path, args: &[String], runs: usize) -> f64 {
    let run = || {
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        assert!(status.success(), "{} {args:?} failed", program.display());
    };
    run();
    let started = Instant::now();
    for _ in 0..runs {
        run();
    }
    started.elapsed().as_secs_f64() * 1e3 / runs as f64
}

fn run_case(
    dir: &Path,
    style: &Style,
    size: Size,
    input: &Path,
    plan: &Plan,
    with_libxslt: bool,
) -> Row {
    let case = format!("{}/{}", style.name, size.name());
    let file_case = format!("{}-{}", style.name, size.name());
    let bytes = std::fs::metadata(input).unwrap().len() as usize;
    let stylesheet = Stylesheet::compile_file(&style.path)
        .unwrap_or_else(|e| panic!("{}: {e}", style.path.display()));
    let params: BTreeMap<String, String> = style
        .params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    // warm-up (fills the per-thread XPath program cache) + the output check
    let started = Instant::now();
    let first = stylesheet
        .transform_bytes(&std::fs::read(input).unwrap(), &params)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    if with_libxslt {
        check_outputs(dir, &file_case, style, input, &first);
    }

    // Interleaved rounds: our loop, then libxslt's measurements, then the
    // two whole-process figures, `plan.rounds` times (the order of the two
    // processors alternating), so a change in machine load during a case
    // weighs on both sides alike; each figure is the median over rounds.
    let rounds = plan.rounds.max(1);
    let round_budget = plan.budget.div_f64(rounds as f64);
    let round_min = plan.min_iters.div_ceil(rounds).max(1);
    let mut ours_rounds = Vec::new();
    let mut lib_rounds = Vec::new();
    let mut marginal_rounds = Vec::new();
    let mut proc_rounds = Vec::new();
    let mut ours_proc_rounds = Vec::new();
    let mut iters = 0;
    for round in 0..rounds {
        let ours = |iters: &mut usize| {
            let mut n = 0;
            let started = Instant::now();
            while n < round_min || started.elapsed() < round_budget {
                let data = std::fs::read(input).unwrap();
                let out = stylesheet.transform_bytes(&data, &params).unwrap();
                std::hint::black_box(out);
                n += 1;
            }
            *iters += n;
            started.elapsed().as_secs_f64() * 1e3 / n as f64
        };
        if !with_libxslt {
            ours_rounds.push(ours(&mut iters));
            continue;
        }
        let runs = plan.processes.div_ceil(rounds).max(1);
        if round % 2 == 0 {
            ours_rounds.push(ours(&mut iters));
            lib_rounds.push(libxslt_in_process(style, input, plan));
            ours_proc_rounds.push(ours_process(style, input, runs));
            proc_rounds.push(xsltproc_process(style, input, runs));
        } else {
            lib_rounds.push(libxslt_in_process(style, input, plan));
            ours_rounds.push(ours(&mut iters));
            proc_rounds.push(xsltproc_process(style, input, runs));
            ours_proc_rounds.push(ours_process(style, input, runs));
        }
        marginal_rounds.push(xsltproc_marginal(
            style,
            input,
            plan.marginal_inputs.div_ceil(rounds).max(2),
        ));
    }
    let ours_ms = median(&ours_rounds);
    let (lib_ms, marginal_ms, proc_ms, ours_proc_ms) = if with_libxslt {
        (
            Some(median(&lib_rounds)),
            Some(median(&marginal_rounds)),
            Some(median(&proc_rounds)),
            Some(median(&ours_proc_rounds)),
        )
    } else {
        (None, None, None, None)
    };
    let row = Row {
        case,
        bytes,
        ours_ms,
        ours_iters: iters,
        first_ms,
        lib_ms,
        marginal_ms,
        proc_ms,
        ours_proc_ms,
    };
    print_row(&row);
    row
}

fn print_header() {
    println!(
        "{:<21} {:>8} {:>11} {:>14} {:>8} {:>9} {:>12} {:>14} {:>13} {:>10} {:>7}",
        "case",
        "input KB",
        "ours ms/msg",
        "libxslt ms/msg",
        "ratio",
        "ours MB/s",
        "libxslt MB/s",
        "libxslt margin",
        "xsltproc proc",
        "ours proc",
        "ours n"
    );
}

fn print_row(r: &Row) {
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
    println!(
        "{:<21} {:>8.1} {:>11.3} {:>14} {:>8} {:>9.2} {:>12} {:>14} {:>13} {:>10} {:>7}",
        r.case,
        r.bytes as f64 / 1024.0,
        r.ours_ms,
        opt(r.lib_ms, &|v| format!("{v:.3}")),
        // ours/libxslt throughput = libxslt time / our time
        opt(r.lib_ms, &|v| format!("{:.3}x", v / r.ours_ms)),
        mb_per_s(r.bytes, r.ours_ms),
        opt(r.lib_ms, &|v| format!("{:.2}", mb_per_s(r.bytes, v))),
        opt(r.marginal_ms, &|v| format!("{v:.3} ms")),
        opt(r.proc_ms, &|v| format!("{v:.2} ms")),
        opt(r.ours_proc_ms, &|v| format!("{v:.2} ms")),
        r.ours_iters,
    );
}

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // special: run a smoke version then.
    let is_bench = std::env::args().any(|a| a == "--bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let styles = vec![
        Style {
            name: "fachverfahren",
            path: root.join("rules/gewerbeanmeldung/2.0.0/fachverfahren.xsl"),
            params: vec![],
            input: Input::Gewerbe,
            text: false,
        },
        Style {
            name: "identity",
            path: root.join("benches/fixtures/identity.xsl"),
            params: vec![("kommune", "12052000")],
            input: Input::Gewerbe,
            text: false,
        },
        Style {
            name: "statistik",
            path: root.join("benches/fixtures/statistik.xsl"),
            params: vec![],
            input: Input::Gewerbe,
            text: false,
        },
        Style {
            name: "minimal",
            path: root.join("benches/fixtures/minimal.xsl"),
            params: vec![],
            input: Input::Gewerbe,
            text: false,
        },
        Style {
            name: "muenchian",
            path: root.join("benches/fixtures/muenchian.xsl"),
            params: vec![],
            input: Input::Meldewesen,
            text: false,
        },
        Style {
            name: "csv",
            path: root.join("benches/fixtures/csv.xsl"),
            params: vec![],
            input: Input::Meldewesen,
            text: true,
        },
        Style {
            name: "recursive",
            path: root.join("benches/fixtures/recursive.xsl"),
            params: vec![],
            input: Input::Meldewesen,
            text: true,
        },
    ];
    let sizes: Vec<Size> = if is_bench {
        vec![Size::Small, Size::Medium, Size::Large]
    } else {
        vec![Size::Small]
    };
    let size_filter = env_list("BENCH_SIZES");
    let style_filter = env_list("BENCH_STYLES");
    let sizes: Vec<Size> = sizes
        .into_iter()
        .filter(|s| {
            size_filter
                .as_ref()
                .is_none_or(|f| f.iter().any(|n| n == s.name()))
        })
        .collect();
    let styles: Vec<Style> = styles
        .into_iter()
        .filter(|s| {
            style_filter
                .as_ref()
                .is_none_or(|f| f.iter().any(|n| n == s.name))
        })
        .collect();

    let ours_only = std::env::var("BENCH_OURS_ONLY").is_ok_and(|v| v == "1");
    let with_libxslt = !ours_only && xsltproc_available();
    if !with_libxslt && !ours_only {
        assert!(
            !is_bench,
            "xsltproc is not installed: the benchmark needs it (apt-get install xsltproc)"
        );
        println!(
            "transform smoke run: xsltproc not installed, libxslt side and output check skipped"
        );
    }
    let budget = Duration::from_secs_f64(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3.0),
    );

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);

    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var("BENCH_DIR") {
        Ok(d) => {
            std::fs::create_dir_all(&d).unwrap();
            PathBuf::from(d)
        }
        Err(_) => tmp.path().to_path_buf(),
    };
    println!(
        "transform bench: our XSLT (drehscheibe-xslt) vs libxslt (xsltproc); parse + transform + serialize per message, compile excluded; {} cores{}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        if is_bench { "" } else { " (smoke run)" }
    );
    let mut kinds: Vec<Input> = Vec::new();
    for s in &styles {
        if !kinds.contains(&s.input) {
            kinds.push(s.input);
        }
    }
    let mut inputs: Vec<(Size, Vec<(Input, PathBuf)>)> = Vec::new();
    for size in &sizes {
        let mut paths = Vec::new();
        for kind in &kinds {
            let (xml, records, what) = kind.generate(size.target_bytes());
            let path = dir.join(format!("{}-{}.xml", kind.name(), size.name()));
            std::fs::write(&path, &xml).unwrap();
            println!(
                "input {:<6}: {} ({} bytes, {} {what})",
                size.name(),
                path.display(),
                xml.len(),
                records
            );
            paths.push((*kind, path));
        }
        inputs.push((*size, paths));
    }
    println!();
    print_header();
    let mut rows = Vec::new();
    for (size, paths) in &inputs {
        let plan = match (is_bench, size) {
            (false, _) => Plan {
                budget: Duration::ZERO,
                min_iters: 2,
                repeat_twice: false,
                blocks: 1,
                processes: 2,
                marginal_inputs: 5,
                rounds: 1,
            },
            (true, Size::Large) => Plan {
                budget,
                min_iters: 3,
                repeat_twice: false,
                blocks: 1,
                processes: 3,
                marginal_inputs: 4,
                rounds,
            },
            (true, _) => Plan {
                budget,
                min_iters: 10,
                repeat_twice: true,
                blocks: 2,
                processes: 50,
                marginal_inputs: if *size == Size::Small { 1000 } else { 200 },
                rounds,
            },
        };
        for style in &styles {
            let Some((_, input)) = paths.iter().find(|(k, _)| *k == style.input) else {
                continue;
            };
            rows.push(run_case(&dir, style, *size, input, &plan, with_libxslt));
        }
    }
    println!();
    println!("ratio = ours/libxslt throughput (libxslt ms / ours ms; > 1: we are faster)");
    println!(
        "libxslt ms/msg = (parse + apply R times) / R + save, from xsltproc --timing --repeat"
    );
    println!("libxslt margin = (wall time of xsltproc naming the input k times - naming it once) / (k-1)");
    println!("xsltproc proc  = whole-process wall time of one xsltproc call (start-up + compile included)");
    println!("ours proc      = the same for one `drehscheibe transform` call (release binary)");
    let first: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {:.1} ms", r.case, r.first_ms))
        .collect();
    println!("our first (cold) run per case: {}", first.join(", "));
    if with_libxslt {
        println!(
            "outputs agree canonically with xsltproc's for all {} cases",
            rows.len()
        );
    }
}
