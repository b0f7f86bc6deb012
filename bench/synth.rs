//! Deterministic synthetic RSS feeds that look like Indonesian regional news:
//! the feed farm (`examples/feedfarm.rs`) serves them and the stage benchmarks
//! (`benches/stages.rs`) parse them. Included by both with `#[path]`, so it
//! adds nothing to the library. Standard library only; every word list below
//! was written for this file.
#![allow(dead_code)] // each includer uses a different part

use std::fmt::Write as _;

/// What the farm generates; equal specs give byte-identical feeds.
#[derive(Debug, Clone)]
pub struct FarmSpec {
    pub feeds: usize,
    pub items: usize,
    /// Share of items (0..=1) whose URL comes from a pool shared by all feeds.
    pub repeat_share: f64,
    pub seed: u64,
    /// Items each feed gains per generation (grow mode).
    pub new_per_generation: usize,
}

impl Default for FarmSpec {
    fn default() -> FarmSpec {
        FarmSpec {
            feeds: 100,
            items: 50,
            repeat_share: 0.1,
            seed: 1,
            new_per_generation: 5,
        }
    }
}

/// splitmix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for one (seed, a, b) triple, independent of call order.
    pub fn keyed(seed: u64, a: u64, b: u64) -> Rng {
        let mut r = Rng(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let x = r.next_u64() ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        Rng(x)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

pub const REGIONS: &[&str] = &[
    "jawa-barat",
    "jawa-tengah",
    "jawa-timur",
    "sumatera-utara",
    "sulawesi-selatan",
    "bali",
    "kalimantan-timur",
    "papua",
];

const CITIES: &[&str] = &[
    "BANDUNG",
    "BOGOR",
    "CIREBON",
    "GARUT",
    "SEMARANG",
    "SOLO",
    "SURABAYA",
    "MALANG",
    "KEDIRI",
    "MEDAN",
    "BINJAI",
    "MAKASSAR",
    "PAREPARE",
    "DENPASAR",
    "SINGARAJA",
    "SAMARINDA",
    "BALIKPAPAN",
    "JAYAPURA",
    "MERAUKE",
    "TASIKMALAYA",
];

const NOUNS: &[&str] = &[
    "warga",
    "pemerintah",
    "kabupaten",
    "kecamatan",
    "desa",
    "jalan",
    "jembatan",
    "pasar",
    "harga",
    "beras",
    "cabai",
    "petani",
    "nelayan",
    "sekolah",
    "guru",
    "siswa",
    "rumah sakit",
    "puskesmas",
    "banjir",
    "longsor",
    "hujan",
    "musim kemarau",
    "anggaran",
    "dinas",
    "bupati",
    "wali kota",
    "gubernur",
    "polisi",
    "pengendara",
    "terminal",
    "pelabuhan",
    "bandara",
    "festival",
    "lomba",
    "pedagang",
    "koperasi",
    "posyandu",
    "irigasi",
    "sampah",
    "air bersih",
];

const VERBS: &[&str] = &[
    "meresmikan",
    "memperbaiki",
    "meninjau",
    "membagikan",
    "menggelar",
    "mengimbau",
    "menertibkan",
    "membangun",
    "menambah",
    "mengurangi",
    "memeriksa",
    "mendata",
    "menyalurkan",
    "mengajak",
    "menunda",
    "mempercepat",
];

const ADJECTIVES: &[&str] = &[
    "baru",
    "rusak",
    "ramai",
    "sepi",
    "mahal",
    "murah",
    "darurat",
    "tahunan",
    "terpadu",
    "gratis",
    "terdampak",
    "setempat",
];

const FILLERS: &[&str] = &[
    "pada hari ini",
    "sejak pekan lalu",
    "menurut keterangan petugas",
    "di wilayah tersebut",
    "hingga akhir bulan",
    "bersama tokoh masyarakat",
    "sesuai arahan pusat",
    "dengan pengawasan ketat",
    "tanpa biaya tambahan",
    "untuk kedua kalinya",
];

const SYLLABLES: &[&str] = &[
    "ba", "di", "su", "an", "to", "ri", "wa", "ti", "na", "har", "yo", "ko", "dewi", "pu", "tra",
    "ma", "ya", "se", "tia",
];

const DAYS: &[&str] = &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The region of feed `i`, from a small fixed list.
pub fn region(i: usize) -> &'static str {
    REGIONS[i % REGIONS.len()]
}

/// The host of feed `i`'s articles.
pub fn host(i: usize) -> String {
    format!("{}-{i}.farm.example", region(i))
}

fn person(rng: &mut Rng) -> String {
    let mut name = String::new();
    for word in 0..2 {
        if word > 0 {
            name.push(' ');
        }
        let start = name.len();
        for _ in 0..2 + rng.below(2) {
            name.push_str(rng.pick(SYLLABLES));
        }
        // Capitalize the word (all syllables are ASCII).
        name[start..start + 1].make_ascii_uppercase();
    }
    name
}

fn sentence(rng: &mut Rng, out: &mut String) {
    let start = out.len();
    let _ = write!(
        out,
        "{} {} {} {} {}",
        rng.pick(NOUNS),
        rng.pick(VERBS),
        rng.pick(NOUNS),
        rng.pick(ADJECTIVES),
        rng.pick(FILLERS)
    );
    for _ in 0..rng.below(3) {
        let _ = write!(out, ", {} {}", rng.pick(NOUNS), rng.pick(ADJECTIVES));
    }
    out.push('.');
    out[start..start + 1].make_ascii_uppercase();
}

fn title(rng: &mut Rng) -> String {
    let mut t = String::new();
    sentence(rng, &mut t);
    t.pop();
    t
}

fn slug(title: &str) -> String {
    title
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-")
}

/// One article: the same (seed, origin, number) always gives the same article,
/// so an article in the shared pool is identical in every feed that carries it.
struct Article {
    title: String,
    link: String,
    author: String,
    category: &'static str,
    html: String,
    minutes: u64,
}

fn article(seed: u64, origin: usize, number: u64, shared: bool) -> Article {
    let mut rng = Rng::keyed(
        seed,
        origin as u64 + if shared { 1 << 40 } else { 0 },
        number,
    );
    let title = title(&mut rng);
    let host = if shared {
        "berita-bersama.farm.example".to_string()
    } else {
        host(origin)
    };
    let link = format!("https://{host}/berita/{number}/{}", slug(&title));
    let author = person(&mut rng);
    let category = rng.pick(&["daerah", "ekonomi", "pendidikan", "olahraga", "hukum"]);
    let target = 1000 + rng.below(2000);
    let mut html = String::with_capacity(target + 400);
    let city = rng.pick(CITIES);
    let _ = write!(html, "<p><strong>{city}</strong> - ");
    sentence(&mut rng, &mut html);
    html.push_str("</p>");
    if rng.below(3) == 0 {
        let _ = write!(
            html,
            "<figure><img src=\"https://{host}/foto/{number}.jpg\" alt=\"{}\" width=\"640\" height=\"360\"><figcaption>Foto: {}</figcaption></figure>",
            rng.pick(NOUNS),
            person(&mut rng)
        );
    }
    while html.len() < target {
        html.push_str("<p>");
        for _ in 0..2 + rng.below(3) {
            sentence(&mut rng, &mut html);
            html.push(' ');
        }
        html.pop();
        html.push_str("</p>");
        if rng.below(5) == 0 {
            let other = rng.below(100_000);
            let _ = write!(
                html,
                "<p><strong>Baca Juga:</strong> <a href=\"https://{host}/berita/{other}/lainnya\">{}</a></p>",
                self::title(&mut rng)
            );
        }
    }
    let _ = write!(html, "<p>Editor: {}</p>", person(&mut rng));
    Article {
        title,
        link,
        author,
        category,
        html,
        minutes: number * 10 + rng.below(10) as u64,
    }
}

/// RFC 822 date with `+0700`, `minutes` after 2026-10-01 00:00 WIB.
fn rfc822(minutes: u64) -> String {
    // 2026-10-01 is a Thursday; dates stay within a few years, so count days.
    let days = minutes / (24 * 60);
    let (hour, minute) = ((minutes / 60) % 24, minutes % 60);
    let (mut year, mut month, mut day) = (2026u64, 10usize, 1 + days);
    loop {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let len = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][month - 1];
        if day <= len {
            break;
        }
        day -= len;
        month += 1;
        if month > 12 {
            month = 1;
            year += 1;
        }
    }
    let weekday = DAYS[((4 + days) % 7) as usize];
    format!(
        "{weekday}, {day:02} {} {year} {hour:02}:{minute:02}:00 +0700",
        MONTHS[month - 1]
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The RSS document of feed `i` at `generation` (0 unless the farm grows):
/// items numbered from `generation * new_per_generation`, newest first.
pub fn feed_xml(spec: &FarmSpec, i: usize, generation: u64) -> String {
    let first = generation * spec.new_per_generation as u64;
    let pool = ((spec.feeds * spec.items) as f64 * spec.repeat_share / 3.0).max(1.0) as u64;
    let mut out = String::with_capacity(spec.items * 2600 + 1024);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n<channel>\n<title>Kabar Farm {i}</title>\n<link>https://{}/</link>\n<description>Berita {} (umpan sintetis)</description>\n<language>id</language>\n",
        host(i),
        region(i)
    );
    for number in (first..first + spec.items as u64).rev() {
        let mut pick = Rng::keyed(spec.seed ^ 0x5EED, i as u64, number);
        let a = if pick.unit() < spec.repeat_share {
            // Articles of the shared pool: each appears in about three feeds.
            article(spec.seed, 0, pick.next_u64() % pool, true)
        } else {
            article(spec.seed, i, number, false)
        };
        let _ = write!(
            out,
            "<item>\n<title>{}</title>\n<link>{}</link>\n<guid isPermaLink=\"true\">{}</guid>\n<pubDate>{}</pubDate>\n<dc:creator>{}</dc:creator>\n<category>{}</category>\n<description><![CDATA[{}]]></description>\n</item>\n",
            escape(&a.title),
            a.link,
            a.link,
            rfc822(a.minutes),
            a.author,
            a.category,
            a.html
        );
    }
    out.push_str("</channel>\n</rss>\n");
    out
}
