//! Short codes people can say: `7-clockwork-crossover-ragtime`, made on
//! one side, read out, typed on the other, and fed by both to the
//! secure-session handshake as its password. Like magic-wormhole's codes: a
//! number, then words from the PGP word list.
//!
//! The number (the nameplate, 1 to 999) is not secret: a rendezvous may
//! use it to bring the two sides together. The words are the secret, one
//! byte each. Word 1, 3, 5, … comes from the "even" list (two syllables),
//! word 2, 4, 6, … from the "odd" list (three syllables), as the PGP word
//! list pairs them with even and odd byte positions. (magic-wormhole
//! starts with the odd list; dgram follows the PGP convention, so a
//! wormhole code is not a dgram code.)
//!
//! [`Code::parse`] takes what a person types after hearing it: any case,
//! spaces around it, dashes or spaces (any number of them) between the
//! parts, leading zeros in the number. It refuses a word of the wrong list
//! for its position rather than accept it as wormhole does: the
//! alternation is there to catch a word left out or two swapped, and such
//! a code gives another password, so the handshake would fail and spend
//! the code. Accepting only the right list also keeps the secret what
//! [`Code::secret_bits`] says, 8 bits a word.
//!
//! Nothing here reads a clock, the OS, a file or randomness: [`Code::generate`]
//! is handed its random bytes.

use std::fmt;

/// The words of a code [`Code::generate`] makes: 24 bits of secret.
pub const WORDS: usize = 3;

/// The fewest words a typed code may have (16 bits of secret).
pub const MIN_WORDS: usize = 2;

/// The most words a typed code may have.
pub const MAX_WORDS: usize = 8;

/// The highest nameplate number (the lowest is 1).
pub const MAX_NAMEPLATE: u16 = 999;

/// A code as users see it in messages.
pub const EXAMPLE: &str = "7-clockwork-crossover-ragtime";

/// A misspelt word is offered the list words at most this many edits away.
const SUGGEST_DISTANCE: usize = 2;

/// At most this many suggestions for one misspelt word.
const MAX_SUGGESTIONS: usize = 3;

/// The longest word of either list.
const LONGEST_WORD: usize = 11;

/// What a refusal quotes of a part typed, at most: far more than
/// [`LONGEST_WORD`], so a misspelling is shown whole.
const SHOWN_CHARS: usize = 24;

/// What [`Code::generate`]'s caller hands in: 8 random bytes.
pub type Random = [u8; 8];

// The words take the first WORDS bytes; the number needs the rest.
const _: () = assert!(WORDS >= MIN_WORDS && WORDS <= MAX_WORDS && WORDS <= 4);

/// How a chat asked for a code: make one, or use the one given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeChoice {
    /// `--code` alone: make a code and show it, for the other person to
    /// type.
    Generate,
    /// `--code CODE`: the code the other side made.
    Given(Code),
}

/// A short code: a nameplate number and [`MIN_WORDS`] to [`MAX_WORDS`]
/// words, each one byte of secret. Its `Debug` shows the number and how
/// many words, never the words.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    nameplate: u16,
    /// The byte of each word: word `i` is `list(i)[byte]`.
    words: Vec<u8>,
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({}-…, {} words)", self.nameplate, self.words.len())
    }
}

/// Which of the two word lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// Two-syllable words, for words 1, 3, 5, ….
    Even,
    /// Three-syllable words, for words 2, 4, 6, ….
    Odd,
}

impl List {
    /// The list of the word at `index` (from 0).
    pub fn at(index: usize) -> List {
        if index.is_multiple_of(2) {
            List::Even
        } else {
            List::Odd
        }
    }

    /// Its 256 words, word `b` for byte value `b`.
    pub fn words(self) -> &'static [&'static str; 256] {
        match self {
            List::Even => &EVEN,
            List::Odd => &ODD,
        }
    }

    /// The byte `word` stands for in this list.
    fn byte_of(self, word: &str) -> Option<u8> {
        let index = self.words().iter().position(|w| *w == word)?;
        u8::try_from(index).ok()
    }
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            List::Even => "even list (two syllables)",
            List::Odd => "odd list (three syllables)",
        })
    }
}

/// The word for `byte` at `index` (from 0) of a code or verification
/// string.
fn word(index: usize, byte: u8) -> &'static str {
    List::at(index).words()[usize::from(byte)]
}

impl Code {
    /// A new code of [`WORDS`] words from 8 random bytes: the words are the
    /// first [`WORDS`] bytes, the number the remaining bytes (40 bits)
    /// taken modulo 999, whose bias (2^40 mod 999 of 2^40) is below one in
    /// a billion.
    pub fn generate(random: Random) -> Code {
        let mut rest = [0u8; 8];
        rest[..8 - WORDS].copy_from_slice(&random[WORDS..]);
        let number = u64::from_le_bytes(rest) % u64::from(MAX_NAMEPLATE) + 1;
        Code {
            nameplate: u16::try_from(number).expect("1 to 999 fits in u16"),
            words: random[..WORDS].to_vec(),
        }
    }

    /// The nameplate number, 1 to 999 (not secret).
    pub fn nameplate(&self) -> u16 {
        self.nameplate
    }

    /// The words, in order (the secret).
    pub fn words(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.words
            .iter()
            .enumerate()
            .map(|(index, byte)| word(index, *byte))
    }

    /// Bits of secret: 8 a word (the number is not secret).
    pub fn secret_bits(&self) -> u32 {
        8 * u32::try_from(self.words.len()).expect("at most 8 words")
    }

    /// What both sides feed to the handshake as its password: the canonical
    /// form's UTF-8, so that every way of typing one code gives the same
    /// bytes.
    pub fn password(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The code a person typed (see the module's documentation for what
    /// is accepted), or what is wrong with it: the first wrong part from
    /// the left, then the number of words.
    pub fn parse(text: &str) -> Result<Code, CodeError> {
        let mut parts = text
            .split(|c: char| c == '-' || c.is_whitespace())
            .filter(|part| !part.is_empty());
        let number = parts.next().ok_or(CodeError::Empty)?;
        let nameplate = nameplate(number)?;
        let mut words = Vec::new();
        for (index, part) in parts.enumerate() {
            let typed = part.to_ascii_lowercase();
            let list = List::at(index);
            let position = index + 1;
            match list.byte_of(&typed) {
                Some(byte) => words.push(byte),
                None => {
                    return Err(match other(list).byte_of(&typed) {
                        Some(byte) => CodeError::WrongList {
                            position,
                            word: other(list).words()[usize::from(byte)],
                            expected: list,
                        },
                        None => CodeError::UnknownWord {
                            position,
                            word: shown(part),
                            suggestions: suggestions(&typed, list),
                        },
                    });
                }
            }
        }
        match words.len() {
            count if count < MIN_WORDS => Err(CodeError::TooFewWords { count }),
            count if count > MAX_WORDS => Err(CodeError::TooManyWords { count }),
            _ => Ok(Code { nameplate, words }),
        }
    }
}

impl fmt::Display for Code {
    /// The canonical form: `7-clockwork-crossover-ragtime`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.nameplate)?;
        for word in self.words() {
            write!(f, "-{word}")?;
        }
        Ok(())
    }
}

/// The nameplate `part` (the first part of a code) gives: ASCII digits,
/// leading zeros allowed, 1 to 999.
fn nameplate(part: &str) -> Result<u16, CodeError> {
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::NoNumber { found: shown(part) });
    }
    let digits = part.trim_start_matches('0');
    match digits.parse::<u16>() {
        Ok(number) if (1..=MAX_NAMEPLATE).contains(&number) => Ok(number),
        // All zeros (empty once trimmed), or too many digits for u16.
        _ => Err(CodeError::NumberOutOfRange {
            number: shown(part),
        }),
    }
}

/// Four words for 4 bytes (the even list first, then alternating, as in a
/// code), such as `aardvark-adroitness-absurd-adviser` for `00 00 01 01`:
/// what both screens show for `/verify`, to be compared aloud.
pub fn verification_words(bytes: &[u8; 4]) -> String {
    bytes
        .iter()
        .enumerate()
        .map(|(index, byte)| word(index, *byte))
        .collect::<Vec<_>>()
        .join("-")
}

/// Why a typed code was refused. Its message quotes what was typed escaped
/// (every character but printable ASCII as `\u{…}`) and cut short, so it
/// can go to a terminal as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Nothing but spaces and dashes.
    #[error("the code is empty: a code is a number and words, such as {EXAMPLE}")]
    Empty,

    /// The first part is not a number.
    #[error(
        "a code starts with its number (1 to {MAX_NAMEPLATE}), such as the 7 of {EXAMPLE}, not \"{found}\""
    )]
    NoNumber {
        /// The first part, escaped.
        found: String,
    },

    /// The number is 0 or above 999.
    #[error("the code's number {number} is out of range: it is 1 to {MAX_NAMEPLATE}")]
    NumberOutOfRange {
        /// The number as typed, escaped.
        number: String,
    },

    /// A word that is in neither list.
    #[error(
        "word {position}, \"{word}\", is not in the word list{}",
        did_you_mean(suggestions)
    )]
    UnknownWord {
        /// Its place among the words, from 1.
        position: usize,
        /// The word as typed, escaped.
        word: String,
        /// The closest words (at most two edits away), closest first.
        suggestions: Vec<&'static str>,
    },

    /// A word of the other list: a word was left out, or two swapped.
    #[error(
        "word {position}, \"{word}\", is from the {} but word {position} is from the {expected}: the lists alternate, so a word may be missing or two swapped",
        other(*expected)
    )]
    WrongList {
        /// Its place among the words, from 1.
        position: usize,
        /// The word.
        word: &'static str,
        /// The list word `position` comes from.
        expected: List,
    },

    /// Fewer than [`MIN_WORDS`] words.
    #[error(
        "the code has {count} word{} after its number; a code has at least {MIN_WORDS}, such as {EXAMPLE}",
        if *count == 1 { "" } else { "s" }
    )]
    TooFewWords {
        /// How many there were.
        count: usize,
    },

    /// More than [`MAX_WORDS`] words.
    #[error("the code has {count} words after its number; a code has at most {MAX_WORDS}")]
    TooManyWords {
        /// How many there were.
        count: usize,
    },
}

/// The list that is not `list`.
fn other(list: List) -> List {
    match list {
        List::Even => List::Odd,
        List::Odd => List::Even,
    }
}

/// The end of an unknown word's message: the suggestions, if any.
fn did_you_mean(suggestions: &[&str]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
}

/// `text` as a refusal may quote it: printable ASCII as it is, anything
/// else escaped (list words are lowercase ASCII, so nothing a person could
/// mean is lost), at most [`SHOWN_CHARS`] characters.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(|c| c.escape_default())
        .collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The list words closest to `typed` (lowercased), at most
/// [`SUGGEST_DISTANCE`] edits away: nearest first, words of `expected` (the
/// list of its position) before words of the other, then alphabetically.
fn suggestions(typed: &str, expected: List) -> Vec<&'static str> {
    let typed: Vec<char> = typed.chars().collect();
    // Longer or shorter than every list word by more than the distance:
    // no need to measure (and a pasted page costs nothing).
    if typed.len() > LONGEST_WORD + SUGGEST_DISTANCE {
        return Vec::new();
    }
    let mut near: Vec<(usize, bool, &'static str)> = [expected, other(expected)]
        .iter()
        .flat_map(|list| list.words().iter().map(move |w| (*list, *w)))
        .filter_map(|(list, w)| {
            let distance = edit_distance(&typed, w);
            (distance <= SUGGEST_DISTANCE).then_some((distance, list != expected, w))
        })
        .collect();
    near.sort();
    near.into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, _, w)| w)
        .collect()
}

/// The edits (a letter inserted, removed, changed, or two neighbours
/// swapped) that make `a` into `b`: the optimal string alignment distance.
fn edit_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // Three rows of the table: two back (for swaps), the last, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let change = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + change);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut last);
        std::mem::swap(&mut last, &mut row);
    }
    last[b.len()]
}

// The PGP word list (Patrick Juola and Philip Zimmermann, 1995; public
// domain), as magic-wormhole ships it (src/wormhole/_wordlist.py, from
// Warren Guy's transcription), lowercased: byte value `b` is word `b` of
// each list.

/// The "even" list: 256 two-syllable words, word `b` for byte value `b`.
pub const EVEN: [&str; 256] = [
    "aardvark",
    "absurd",
    "accrue",
    "acme",
    "adrift",
    "adult",
    "afflict",
    "ahead",
    "aimless",
    "algol",
    "allow",
    "alone",
    "ammo",
    "ancient",
    "apple",
    "artist",
    "assume",
    "athens",
    "atlas",
    "aztec",
    "baboon",
    "backfield",
    "backward",
    "banjo",
    "beaming",
    "bedlamp",
    "beehive",
    "beeswax",
    "befriend",
    "belfast",
    "berserk",
    "billiard",
    "bison",
    "blackjack",
    "blockade",
    "blowtorch",
    "bluebird",
    "bombast",
    "bookshelf",
    "brackish",
    "breadline",
    "breakup",
    "brickyard",
    "briefcase",
    "burbank",
    "button",
    "buzzard",
    "cement",
    "chairlift",
    "chatter",
    "checkup",
    "chisel",
    "choking",
    "chopper",
    "christmas",
    "clamshell",
    "classic",
    "classroom",
    "cleanup",
    "clockwork",
    "cobra",
    "commence",
    "concert",
    "cowbell",
    "crackdown",
    "cranky",
    "crowfoot",
    "crucial",
    "crumpled",
    "crusade",
    "cubic",
    "dashboard",
    "deadbolt",
    "deckhand",
    "dogsled",
    "dragnet",
    "drainage",
    "dreadful",
    "drifter",
    "dropper",
    "drumbeat",
    "drunken",
    "dupont",
    "dwelling",
    "eating",
    "edict",
    "egghead",
    "eightball",
    "endorse",
    "endow",
    "enlist",
    "erase",
    "escape",
    "exceed",
    "eyeglass",
    "eyetooth",
    "facial",
    "fallout",
    "flagpole",
    "flatfoot",
    "flytrap",
    "fracture",
    "framework",
    "freedom",
    "frighten",
    "gazelle",
    "geiger",
    "glitter",
    "glucose",
    "goggles",
    "goldfish",
    "gremlin",
    "guidance",
    "hamlet",
    "highchair",
    "hockey",
    "indoors",
    "indulge",
    "inverse",
    "involve",
    "island",
    "jawbone",
    "keyboard",
    "kickoff",
    "kiwi",
    "klaxon",
    "locale",
    "lockup",
    "merit",
    "minnow",
    "miser",
    "mohawk",
    "mural",
    "music",
    "necklace",
    "neptune",
    "newborn",
    "nightbird",
    "oakland",
    "obtuse",
    "offload",
    "optic",
    "orca",
    "payday",
    "peachy",
    "pheasant",
    "physique",
    "playhouse",
    "pluto",
    "preclude",
    "prefer",
    "preshrunk",
    "printer",
    "prowler",
    "pupil",
    "puppy",
    "python",
    "quadrant",
    "quiver",
    "quota",
    "ragtime",
    "ratchet",
    "rebirth",
    "reform",
    "regain",
    "reindeer",
    "rematch",
    "repay",
    "retouch",
    "revenge",
    "reward",
    "rhythm",
    "ribcage",
    "ringbolt",
    "robust",
    "rocker",
    "ruffled",
    "sailboat",
    "sawdust",
    "scallion",
    "scenic",
    "scorecard",
    "scotland",
    "seabird",
    "select",
    "sentence",
    "shadow",
    "shamrock",
    "showgirl",
    "skullcap",
    "skydive",
    "slingshot",
    "slowdown",
    "snapline",
    "snapshot",
    "snowcap",
    "snowslide",
    "solo",
    "southward",
    "soybean",
    "spaniel",
    "spearhead",
    "spellbind",
    "spheroid",
    "spigot",
    "spindle",
    "spyglass",
    "stagehand",
    "stagnate",
    "stairway",
    "standard",
    "stapler",
    "steamship",
    "sterling",
    "stockman",
    "stopwatch",
    "stormy",
    "sugar",
    "surmount",
    "suspense",
    "sweatband",
    "swelter",
    "tactics",
    "talon",
    "tapeworm",
    "tempest",
    "tiger",
    "tissue",
    "tonic",
    "topmost",
    "tracker",
    "transit",
    "trauma",
    "treadmill",
    "trojan",
    "trouble",
    "tumor",
    "tunnel",
    "tycoon",
    "uncut",
    "unearth",
    "unwind",
    "uproot",
    "upset",
    "upshot",
    "vapor",
    "village",
    "virus",
    "vulcan",
    "waffle",
    "wallet",
    "watchword",
    "wayside",
    "willow",
    "woodlark",
    "zulu",
];

/// The "odd" list: 256 three-syllable words, word `b` for byte value `b`.
pub const ODD: [&str; 256] = [
    "adroitness",
    "adviser",
    "aftermath",
    "aggregate",
    "alkali",
    "almighty",
    "amulet",
    "amusement",
    "antenna",
    "applicant",
    "apollo",
    "armistice",
    "article",
    "asteroid",
    "atlantic",
    "atmosphere",
    "autopsy",
    "babylon",
    "backwater",
    "barbecue",
    "belowground",
    "bifocals",
    "bodyguard",
    "bookseller",
    "borderline",
    "bottomless",
    "bradbury",
    "bravado",
    "brazilian",
    "breakaway",
    "burlington",
    "businessman",
    "butterfat",
    "camelot",
    "candidate",
    "cannonball",
    "capricorn",
    "caravan",
    "caretaker",
    "celebrate",
    "cellulose",
    "certify",
    "chambermaid",
    "cherokee",
    "chicago",
    "clergyman",
    "coherence",
    "combustion",
    "commando",
    "company",
    "component",
    "concurrent",
    "confidence",
    "conformist",
    "congregate",
    "consensus",
    "consulting",
    "corporate",
    "corrosion",
    "councilman",
    "crossover",
    "crucifix",
    "cumbersome",
    "customer",
    "dakota",
    "decadence",
    "december",
    "decimal",
    "designing",
    "detector",
    "detergent",
    "determine",
    "dictator",
    "dinosaur",
    "direction",
    "disable",
    "disbelief",
    "disruptive",
    "distortion",
    "document",
    "embezzle",
    "enchanting",
    "enrollment",
    "enterprise",
    "equation",
    "equipment",
    "escapade",
    "eskimo",
    "everyday",
    "examine",
    "existence",
    "exodus",
    "fascinate",
    "filament",
    "finicky",
    "forever",
    "fortitude",
    "frequency",
    "gadgetry",
    "galveston",
    "getaway",
    "glossary",
    "gossamer",
    "graduate",
    "gravity",
    "guitarist",
    "hamburger",
    "hamilton",
    "handiwork",
    "hazardous",
    "headwaters",
    "hemisphere",
    "hesitate",
    "hideaway",
    "holiness",
    "hurricane",
    "hydraulic",
    "impartial",
    "impetus",
    "inception",
    "indigo",
    "inertia",
    "infancy",
    "inferno",
    "informant",
    "insincere",
    "insurgent",
    "integrate",
    "intention",
    "inventive",
    "istanbul",
    "jamaica",
    "jupiter",
    "leprosy",
    "letterhead",
    "liberty",
    "maritime",
    "matchmaker",
    "maverick",
    "medusa",
    "megaton",
    "microscope",
    "microwave",
    "midsummer",
    "millionaire",
    "miracle",
    "misnomer",
    "molasses",
    "molecule",
    "montana",
    "monument",
    "mosquito",
    "narrative",
    "nebula",
    "newsletter",
    "norwegian",
    "october",
    "ohio",
    "onlooker",
    "opulent",
    "orlando",
    "outfielder",
    "pacific",
    "pandemic",
    "pandora",
    "paperweight",
    "paragon",
    "paragraph",
    "paramount",
    "passenger",
    "pedigree",
    "pegasus",
    "penetrate",
    "perceptive",
    "performance",
    "pharmacy",
    "phonetic",
    "photograph",
    "pioneer",
    "pocketful",
    "politeness",
    "positive",
    "potato",
    "processor",
    "provincial",
    "proximate",
    "puberty",
    "publisher",
    "pyramid",
    "quantity",
    "racketeer",
    "rebellion",
    "recipe",
    "recover",
    "repellent",
    "replica",
    "reproduce",
    "resistor",
    "responsive",
    "retraction",
    "retrieval",
    "retrospect",
    "revenue",
    "revival",
    "revolver",
    "sandalwood",
    "sardonic",
    "saturday",
    "savagery",
    "scavenger",
    "sensation",
    "sociable",
    "souvenir",
    "specialist",
    "speculate",
    "stethoscope",
    "stupendous",
    "supportive",
    "surrender",
    "suspicious",
    "sympathy",
    "tambourine",
    "telephone",
    "therapist",
    "tobacco",
    "tolerance",
    "tomorrow",
    "torpedo",
    "tradition",
    "travesty",
    "trombonist",
    "truncated",
    "typewriter",
    "ultimate",
    "undaunted",
    "underfoot",
    "unicorn",
    "unify",
    "universe",
    "unravel",
    "upcoming",
    "vacancy",
    "vagabond",
    "vertigo",
    "virginia",
    "visitor",
    "vocalist",
    "voyager",
    "warranty",
    "waterloo",
    "whimsical",
    "wichita",
    "wilmington",
    "wyoming",
    "yesteryear",
    "yucatan",
];

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every word of both lists, with its list.
    fn all_words() -> impl Iterator<Item = (List, &'static str)> {
        [List::Even, List::Odd]
            .into_iter()
            .flat_map(|list| list.words().iter().map(move |w| (list, *w)))
    }

    /// The code of `nameplate` and word bytes `bytes`, written canonically
    /// by hand (not by `Display`).
    fn canonical(nameplate: u16, bytes: &[u8]) -> String {
        let mut text = nameplate.to_string();
        for (index, byte) in bytes.iter().enumerate() {
            let list = if index.is_multiple_of(2) { &EVEN } else { &ODD };
            text.push('-');
            text.push_str(list[usize::from(*byte)]);
        }
        text
    }

    fn refusal(text: &str) -> String {
        match Code::parse(text) {
            Ok(code) => panic!("{text:?} was taken as {code}"),
            Err(error) => error.to_string(),
        }
    }

    /// The lists are 256 + 256 distinct words, lowercase ASCII letters
    /// only, 4 to LONGEST_WORD letters long (what suggestions rely on).
    #[test]
    fn the_lists_are_512_distinct_lowercase_words() {
        let mut words: Vec<&str> = all_words().map(|(_, w)| w).collect();
        assert_eq!(words.len(), 512);
        assert!(
            words
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())),
            "{words:?}"
        );
        assert_eq!(words.iter().map(|w| w.len()).max(), Some(LONGEST_WORD));
        assert_eq!(words.iter().map(|w| w.len()).min(), Some(4));
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), 512, "a word is in the lists twice");
    }

    /// No word is the beginning of another, in its own list or the other:
    /// a word typed in full is never also the start of a longer one (what a
    /// completer would need).
    #[test]
    fn no_word_is_a_prefix_of_another() {
        for (_, a) in all_words() {
            for (_, b) in all_words() {
                assert!(a == b || !b.starts_with(a), "{a} begins {b}");
            }
        }
    }

    /// The lists are in byte order, as the PGP word list gives them: the
    /// first, last and a middle entry of each, from the source.
    #[test]
    fn the_words_stand_for_their_bytes() {
        assert_eq!((EVEN[0x00], ODD[0x00]), ("aardvark", "adroitness"));
        assert_eq!((EVEN[0x1b], ODD[0x1b]), ("beeswax", "bravado"));
        assert_eq!((EVEN[0xff], ODD[0xff]), ("zulu", "yucatan"));
    }

    /// A generated code has WORDS words, the even list first and
    /// alternating, taken from the first bytes, and a number from the
    /// others: all zero bytes give the first word of each list and number 1.
    #[test]
    fn a_generated_code_takes_its_words_from_the_bytes() {
        let code = Code::generate([0; 8]);
        assert_eq!(code.to_string(), "1-aardvark-adroitness-aardvark");
        let code = Code::generate([0x1b, 0x1b, 0xff, 0, 0, 0, 0, 0]);
        assert_eq!(code.to_string(), "1-beeswax-bravado-zulu");
        assert_eq!(code.secret_bits(), 24);
        assert_eq!(Code::generate([0, 0, 0, 6, 0, 0, 0, 0]).nameplate(), 7);
    }

    /// Every nameplate 1 to 999 is as likely as any other: over 3 × 999
    /// consecutive values of the number's bytes, each comes exactly 3
    /// times (beyond that, the 40 bits' wrap-around is a bias under 1e-9).
    #[test]
    fn every_nameplate_is_as_likely() {
        let mut counts = [0u32; MAX_NAMEPLATE as usize + 1];
        for value in 0..3 * u64::from(MAX_NAMEPLATE) {
            let mut random = [0u8; 8];
            random[WORDS..].copy_from_slice(&value.to_le_bytes()[..8 - WORDS]);
            counts[usize::from(Code::generate(random).nameplate())] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!(counts[1..].iter().all(|c| *c == 3), "{counts:?}");
    }

    /// Spelling variants a person may type (case, spaces around it, spaces
    /// or dashes between the parts, leading zeros) are one code with one
    /// password: the canonical form's bytes.
    #[test]
    fn spelling_variants_give_one_password() {
        let canonical = Code::parse(EXAMPLE).expect("the example is a code");
        assert_eq!(canonical.to_string(), EXAMPLE);
        assert_eq!(canonical.password(), EXAMPLE.as_bytes());
        for typed in [
            "007 Clockwork  crossover ragtime",
            "  7-CLOCKWORK-Crossover-RAGtime\n",
            "7 - clockwork - crossover - ragtime",
            "7--clockwork\tcrossover ragtime-",
        ] {
            let code = Code::parse(typed).unwrap_or_else(|e| panic!("{typed:?}: {e}"));
            assert_eq!(code, canonical, "{typed:?}");
            assert_eq!(code.password(), canonical.password(), "{typed:?}");
        }
    }

    /// Codes of 2 and of 8 words are taken, with 8 bits of secret a word.
    #[test]
    fn codes_have_two_to_eight_words() {
        let two = Code::parse("999-zulu-yucatan").expect("two words");
        assert_eq!((two.nameplate(), two.secret_bits()), (999, 16));
        let eight = canonical(1, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let code = Code::parse(&eight).expect("eight words");
        assert_eq!(code.secret_bits(), 64);
        assert_eq!(code.to_string(), eight);
    }

    /// Each refusal says what was wrong, in one message.
    #[test]
    fn each_refusal_says_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            (
                " - ",
                "the code is empty: a code is a number and words, such as 7-clockwork-crossover-ragtime",
            ),
            (
                "clockwork-crossover",
                "a code starts with its number (1 to 999), such as the 7 of 7-clockwork-crossover-ragtime, not \"clockwork\"",
            ),
            (
                "7a-clockwork-crossover",
                "a code starts with its number (1 to 999), such as the 7 of 7-clockwork-crossover-ragtime, not \"7a\"",
            ),
            (
                "000-clockwork-crossover",
                "the code's number 000 is out of range: it is 1 to 999",
            ),
            (
                "1000-clockwork-crossover",
                "the code's number 1000 is out of range: it is 1 to 999",
            ),
            (
                "99999999999999999999-clockwork-crossover",
                "the code's number 99999999999999999999 is out of range: it is 1 to 999",
            ),
            (
                "7-clockwork-bogus",
                "word 2, \"bogus\", is not in the word list",
            ),
            (
                "7",
                "the code has 0 words after its number; a code has at least 2, such as 7-clockwork-crossover-ragtime",
            ),
            (
                "7-clockwork",
                "the code has 1 word after its number; a code has at least 2, such as 7-clockwork-crossover-ragtime",
            ),
            (
                &format!("{}-zulu", canonical(7, &[0; 8])),
                "the code has 9 words after its number; a code has at most 8",
            ),
            (
                "7-crossover-clockwork-ragtime",
                "word 1, \"crossover\", is from the odd list (three syllables) but word 1 is from the even list (two syllables): the lists alternate, so a word may be missing or two swapped",
            ),
            (
                "7-clockwork-ragtime",
                "word 2, \"ragtime\", is from the even list (two syllables) but word 2 is from the odd list (three syllables): the lists alternate, so a word may be missing or two swapped",
            ),
        ];
        for (typed, message) in cases {
            assert_eq!(refusal(typed), *message, "{typed:?}");
        }
    }

    /// A misspelt word gets the list words at most two edits away
    /// (insertions, deletions, changes, swapped neighbours), the list of its
    /// position first; a word far from all gets none.
    #[test]
    fn misspelt_words_get_suggestions() {
        let suggested = |typed: &str| match Code::parse(typed) {
            Err(CodeError::UnknownWord { suggestions, .. }) => suggestions,
            other => panic!("{typed:?}: {other:?}"),
        };
        // One letter left out, one changed, two neighbours swapped.
        assert_eq!(suggested("7-clokwork-crossover"), ["clockwork"]);
        assert_eq!(suggested("7-clockwork-crossovar"), ["crossover"]);
        assert_eq!(suggested("7-clcokwork-crossover"), ["clockwork"]);
        // A swap and a letter left out: two edits, where a swap counts one.
        assert_eq!(suggested("7-clcokwrk-crossover"), ["clockwork"]);
        assert_eq!(
            refusal("7-clockwork-crosover"),
            "word 2, \"crosover\", is not in the word list; did you mean crossover?"
        );
        // "revenue" is an odd word, "revenge" an even one: at word 1 the
        // even one comes first, at word 2 the odd one.
        assert_eq!(suggested("7-revenxe-crossover"), ["revenge", "revenue"]);
        assert_eq!(suggested("7-clockwork-revenxe"), ["revenue", "revenge"]);
        assert_eq!(
            refusal("7-revenxe-crossover"),
            "word 1, \"revenxe\", is not in the word list; did you mean revenge or revenue?"
        );
        assert_eq!(suggested("7-xyzzyplugh-crossover"), Vec::<&str>::new());
        assert_eq!(
            suggested(&format!("7-{}", "a".repeat(5000))),
            Vec::<&str>::new()
        );
    }

    /// What a refusal quotes of the typed code is escaped and cut short:
    /// no control or other hidden character reaches the message, and a
    /// pasted page becomes a few dozen characters.
    #[test]
    fn refusals_escape_what_was_typed() {
        let message = refusal("7-clock\u{1b}[31mwork\u{202e}-crossover");
        assert_eq!(
            message,
            "word 1, \"clock\\u{1b}[31mwork\\u{202e}\", is not in the word list"
        );
        let message = refusal("\u{9b}31m-clockwork");
        assert!(message.contains("not \"\\u{9b}31m\""), "{message}");
        let message = refusal(&format!("7-{}", "b".repeat(5000)));
        assert!(
            message.contains(&format!("\"{}…\"", "b".repeat(24))),
            "{message}"
        );
        assert!(message.len() < 100, "{message}");
        assert!(
            message
                .chars()
                .all(|c| c == '…' || (' '..='~').contains(&c))
        );
    }

    /// The verification string is four words, the even list first and
    /// alternating, each for its byte.
    #[test]
    fn verification_words_alternate_lists() {
        assert_eq!(
            verification_words(&[0, 0, 1, 1]),
            "aardvark-adroitness-absurd-adviser"
        );
        assert_eq!(
            verification_words(&[0xff, 0x1b, 0x1b, 0xff]),
            "zulu-bravado-beeswax-yucatan"
        );
    }

    /// `Debug` (which may reach a log) shows no word of the secret.
    #[test]
    fn debug_hides_the_words() {
        let code = Code::parse(EXAMPLE).expect("the example is a code");
        let debug = format!("{:?}", CodeChoice::Given(code));
        assert_eq!(debug, "Given(Code(7-…, 3 words))");
    }

    /// Mangles the spelling of a canonical code as a person might: each
    /// letter's case from `cases`, each dash replaced by the separator run
    /// of `seps`, leading zeros and spaces around.
    fn mangled(canonical: &str, cases: &[bool], seps: &[u8], zeros: usize) -> String {
        let runs = ["-", " ", "  ", " - ", "\t", "--"];
        let mut out = format!(" {}", "0".repeat(zeros));
        let mut sep = seps.iter().cycle();
        let mut case = cases.iter().cycle();
        for c in canonical.chars() {
            match c {
                '-' => out.push_str(runs[usize::from(*sep.next().unwrap()) % runs.len()]),
                c if *case.next().unwrap() => out.push(c.to_ascii_uppercase()),
                c => out.push(c),
            }
        }
        out.push('\n');
        out
    }

    proptest! {
        /// Generate, show, parse: the same code, whatever the bytes, with
        /// its number in range and 24 bits of secret.
        #[test]
        fn generated_codes_round_trip(random in any::<[u8; 8]>()) {
            let code = Code::generate(random);
            prop_assert!((1..=MAX_NAMEPLATE).contains(&code.nameplate()));
            prop_assert_eq!(code.secret_bits(), 24);
            let shown = code.to_string();
            prop_assert_eq!(&shown, &canonical(code.nameplate(), &random[..WORDS]));
            let parsed = Code::parse(&shown).expect("a generated code parses");
            prop_assert_eq!(parsed.password(), code.password());
            prop_assert_eq!(parsed, code);
        }

        /// Any code of 2 to 8 words, typed in any case with any separators
        /// and leading zeros, gives the password of its canonical form.
        #[test]
        fn typed_codes_give_the_canonical_password(
            nameplate in 1..=MAX_NAMEPLATE,
            bytes in proptest::collection::vec(any::<u8>(), MIN_WORDS..=MAX_WORDS),
            cases in proptest::collection::vec(any::<bool>(), 1..16),
            seps in proptest::collection::vec(any::<u8>(), 1..9),
            zeros in 0usize..3,
        ) {
            let canonical = canonical(nameplate, &bytes);
            let typed = mangled(&canonical, &cases, &seps, zeros);
            let code = Code::parse(&typed).expect("a typed code parses");
            prop_assert_eq!(code.password(), canonical.as_bytes());
        }

        /// Whatever is typed, parsing answers (never panics), and a
        /// refusal's message is printable.
        #[test]
        fn parsing_anything_answers(text in any::<String>()) {
            if let Err(error) = Code::parse(&text) {
                let message = error.to_string();
                prop_assert!(message.chars().all(|c| c == '…' || (' '..='~').contains(&c)), "{}", message);
            }
        }
    }
}
