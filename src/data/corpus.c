/* The built-in corpus: short stories from a small probabilistic grammar.
 *
 * `zerolab train` with no data file needs text that (1) ships with zerolab under its own
 * licence, (2) is the same on every machine, and (3) is easy enough that a small
 * byte-level GPT's loss falls visibly within ~100 steps, from ln(256) ~ 5.5 towards ~2.
 * So the text is generated here, at run time, from the grammar below; the words and the
 * grammar are zerolab's own, and the only randomness is zl_rng_bits (integer arithmetic,
 * identical everywhere) under a fixed seed.
 *
 * The grammar. The corpus is a sequence of paragraphs (one per line, separated by a blank
 * line). Each paragraph is a little story about one "hero" (a name, or "the" + adjective +
 * noun, e.g. "the brave fox"):
 *
 *   paragraph := opening sentence{3..7} closing
 *   opening   := "Once there was" a(n) ADJ NOUN "called" NAME "." | "This is a story about" HERO "."
 *   sentence  := [TIME ","] SUBJ VERB_T OBJ [PLACE] "."     "The brave fox found a red ball."
 *              | [TIME ","] SUBJ VERB_I [ADVERB] [PLACE] "." "Then the brave fox sang softly."
 *              | SUBJ "was" ADJ ["and" ADJ] "."              "The brave fox was tired and happy."
 *              | SUBJ "said, \"I like the" ADJ THING ".\""    (direct speech)
 *              | "Did" SUBJ VERB_BASE OBJ "? Yes," SUBJ VERB_PAST OBJ "."   (question, echoed)
 *              | SUBJ "had" NUMBER THINGs ": one, two, ..., NUMBER."        (counting)
 *   closing   := "And that was the end of the story of" HERO "."
 *   SUBJ      := HERO (60%) | "the" NOUN (another character)
 *   OBJ       := "a(n)" [ADJ] THING | "the" [ADJ] THING
 *   PLACE     := PREP "the" SPOT
 *
 * with a few dozen words per class (below): NOUN 24 characters, THING 28 objects, ADJ 24,
 * VERB_T 22 (base and past forms), VERB_I 14, ADVERB 10, PREP 10, SPOT 16, TIME 8,
 * NAME 12, NUMBER two..six. Sentences start with a capital letter; "a" becomes "an"
 * before a vowel. The text uses printable ASCII and '\n' only.
 *
 * What a model can learn, in the order it usually does: letter and word frequencies
 * (small vocabulary, every word repeats thousands of times), spelling inside words, the
 * sentence frames and punctuation, and copying from context (the hero's name recurs
 * through the paragraph; the answer repeats the question; the counting lists run on). */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/rng.h"
#include "data/dataset.h"

#define CORPUS_SEED 20240520u
#define CORPUS_TARGET_NBYTES 320000 /* stop after the paragraph that crosses this */
#define CORPUS_MAX_PARAGRAPH 4096   /* far above the longest paragraph the grammar makes */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const NOUNS[] = {
    "fox",    "cat",   "dog",   "bird",    "king",   "queen",  "farmer", "child",
    "wolf",   "bear",  "horse", "miller",  "baker",  "sailor", "owl",    "mouse",
    "rabbit", "goat",  "duck",  "frog",    "lion",   "robot",  "teacher", "painter",
};
static const char *const THINGS[] = {
    "apple", "ball",  "box",    "book",   "bell",   "stone",  "cake",   "cup",
    "door",  "flower", "key",   "lamp",   "map",    "song",   "star",   "window",
    "basket", "coat", "drum",   "hat",    "egg",    "boat",   "letter", "ring",
    "candle", "spoon", "shoe",  "kite",
};
static const char *const ADJS[] = {
    "big",   "small",  "old",    "young", "red",   "green",  "blue",   "happy",
    "sad",   "quiet",  "loud",   "quick", "slow",  "brave",  "kind",   "tired",
    "bright", "dark",  "warm",   "cold",  "tall",  "little", "clever", "gentle",
};
/* Transitive verbs: base form, past form. */
static const char *const VERBS_T[][2] = {
    {"see", "saw"},       {"find", "found"},     {"take", "took"},     {"carry", "carried"},
    {"paint", "painted"}, {"open", "opened"},    {"like", "liked"},    {"want", "wanted"},
    {"lose", "lost"},     {"build", "built"},    {"wash", "washed"},   {"move", "moved"},
    {"keep", "kept"},     {"share", "shared"},   {"follow", "followed"}, {"watch", "watched"},
    {"drop", "dropped"},  {"hold", "held"},      {"clean", "cleaned"}, {"fix", "fixed"},
    {"sell", "sold"},     {"buy", "bought"},
};
static const char *const VERBS_I[] = {
    "ran",   "slept",  "sang",  "danced", "waited", "laughed", "jumped",
    "walked", "cried", "smiled", "rested", "played", "swam",    "sat",
};
static const char *const ADVERBS[] = {
    "slowly", "quickly", "again", "softly", "happily", "loudly", "once more", "all day",
    "for a while", "with a friend",
};
static const char *const PREPS[] = {
    "in", "on", "near", "by", "under", "behind", "across", "over", "beside", "inside",
};
static const char *const SPOTS[] = {
    "garden", "hill",   "river", "door",  "tree",  "market", "house",  "road",
    "forest", "field",  "town",  "sea",   "kitchen", "bridge", "barn", "lake",
};
static const char *const TIMES[] = {
    "One day", "In the morning", "Later", "At night", "After that", "Then", "Soon",
    "In the evening",
};
static const char *const NAMES[] = {
    "Anna", "Ben", "Mia", "Tom", "Lila", "Omar", "Zoe", "Sam", "Ivan", "Nora", "Eli", "Ruth",
};
static const char *const NUMBERS[] = {"one", "two", "three", "four", "five", "six"};

typedef struct gen {
    uint64_t draw;   /* index of the next random draw */
    char *buf;       /* the text so far */
    size_t len, cap;
    char hero[64];   /* the paragraph's main character, as written mid-sentence */
} gen;

/* Uniform choice in [0, n): one counter-based draw per choice, so the text depends on
 * nothing but the seed. (The modulo bias is irrelevant at n < 100.) */
static int pick(gen *g, int n)
{
    return (int)(zl_rng_bits(CORPUS_SEED, 0, g->draw++) % (uint64_t)n);
}
static int chance(gen *g, int percent) { return pick(g, 100) < percent; }
#define ANY(g, words) ((words)[pick((g), COUNT(words))])

static void put(gen *g, const char *s)
{
    size_t n = strlen(s);
    ZL_ASSERT(g->len + n < g->cap); /* the capacity covers the longest paragraph */
    memcpy(g->buf + g->len, s, n);
    g->len += n;
}

/* Start of a sentence: written as usual, then its first letter is capitalised. */
static void put_cap(gen *g, const char *s)
{
    size_t at = g->len;
    put(g, s);
    if (g->buf[at] >= 'a' && g->buf[at] <= 'z') g->buf[at] = (char)(g->buf[at] - 'a' + 'A');
}

static int starts_with_vowel(const char *w) { return w[0] && strchr("aeiou", w[0]) != NULL; }

/* "a red ball" / "an old egg" / "the ball": an object phrase with an optional adjective. */
static void put_object(gen *g)
{
    const char *adj = chance(g, 50) ? ANY(g, ADJS) : NULL;
    const char *thing = ANY(g, THINGS);
    if (chance(g, 40)) {
        put(g, "the ");
    } else {
        put(g, starts_with_vowel(adj ? adj : thing) ? "an " : "a ");
    }
    if (adj) {
        put(g, adj);
        put(g, " ");
    }
    put(g, thing);
}

/* The subject: mostly the hero, sometimes another character. */
static void put_subject(gen *g, int capital)
{
    char s[64] = "the ";
    const char *subj = g->hero;
    if (!chance(g, 60)) {
        strcat(s, ANY(g, NOUNS));
        subj = s;
    }
    if (capital) put_cap(g, subj);
    else put(g, subj);
}

static void put_place(gen *g)
{
    put(g, " ");
    put(g, ANY(g, PREPS));
    put(g, " the ");
    put(g, ANY(g, SPOTS));
}

/* Optional "Then, " / "In the morning, " before the subject. */
static int put_time(gen *g)
{
    if (!chance(g, 30)) return 0;
    put(g, ANY(g, TIMES));
    put(g, ", ");
    return 1;
}

static void sentence(gen *g)
{
    int kind = pick(g, 10);
    if (kind < 4) { /* transitive: The brave fox found a red ball near the river. */
        put_subject(g, !put_time(g));
        put(g, " ");
        put(g, VERBS_T[pick(g, COUNT(VERBS_T))][1]);
        put(g, " ");
        put_object(g);
        if (chance(g, 50)) put_place(g);
        put(g, ".");
    } else if (kind < 6) { /* intransitive: Then the brave fox sang softly in the garden. */
        put_subject(g, !put_time(g));
        put(g, " ");
        put(g, ANY(g, VERBS_I));
        if (chance(g, 50)) {
            put(g, " ");
            put(g, ANY(g, ADVERBS));
        }
        if (chance(g, 50)) put_place(g);
        put(g, ".");
    } else if (kind < 7) { /* state: The brave fox was tired and happy. */
        put_subject(g, 1);
        put(g, " was ");
        put(g, ANY(g, ADJS));
        if (chance(g, 40)) {
            put(g, " and ");
            put(g, ANY(g, ADJS));
        }
        put(g, ".");
    } else if (kind < 8) { /* speech: The brave fox said, "I like the red ball." */
        put_subject(g, 1);
        put(g, " said, \"I like the ");
        put(g, ANY(g, ADJS));
        put(g, " ");
        put(g, ANY(g, THINGS));
        put(g, ".\"");
    } else if (kind < 9) { /* question and echoed answer: copying from context */
        const char *const *verb = VERBS_T[pick(g, COUNT(VERBS_T))];
        size_t subj_at, obj_at;
        put(g, "Did ");
        subj_at = g->len;
        put_subject(g, 0);
        char subj[64];
        snprintf(subj, sizeof subj, "%.*s", (int)(g->len - subj_at), g->buf + subj_at);
        put(g, " ");
        put(g, verb[0]);
        put(g, " ");
        obj_at = g->len;
        put_object(g);
        char obj[64];
        snprintf(obj, sizeof obj, "%.*s", (int)(g->len - obj_at), g->buf + obj_at);
        put(g, "? Yes, ");
        put(g, subj);
        put(g, " ");
        put(g, verb[1]);
        put(g, " ");
        put(g, obj);
        put(g, ".");
    } else { /* counting: The brave fox had three cups: one, two, three. */
        int n = 2 + pick(g, COUNT(NUMBERS) - 1); /* 2..6 */
        const char *thing = ANY(g, THINGS);
        put_subject(g, 1);
        put(g, " had ");
        put(g, NUMBERS[n - 1]);
        put(g, " ");
        put(g, thing);
        size_t tl = strlen(thing);
        int es = thing[tl - 1] == 'x' || thing[tl - 1] == 's' ||
                 (tl > 1 && thing[tl - 1] == 'h' && strchr("cs", thing[tl - 2]));
        put(g, es ? "es:" : "s:");
        for (int i = 0; i < n; i++) {
            put(g, i ? ", " : " ");
            put(g, NUMBERS[i]);
        }
        put(g, ".");
    }
}

static void paragraph(gen *g)
{
    /* Choose the hero and introduce it. */
    if (chance(g, 50)) {
        const char *adj = ANY(g, ADJS), *noun = ANY(g, NOUNS), *name = ANY(g, NAMES);
        snprintf(g->hero, sizeof g->hero, "%s", name);
        put(g, starts_with_vowel(adj) ? "Once there was an " : "Once there was a ");
        put(g, adj);
        put(g, " ");
        put(g, noun);
        put(g, " called ");
        put(g, name);
        put(g, ".");
    } else {
        const char *adj = ANY(g, ADJS), *noun = ANY(g, NOUNS);
        snprintf(g->hero, sizeof g->hero, "the %s %s", adj, noun);
        put(g, "This is a story about ");
        put(g, g->hero);
        put(g, ".");
    }
    int nsentences = 3 + pick(g, 5);
    for (int i = 0; i < nsentences; i++) {
        put(g, " ");
        sentence(g);
    }
    put(g, " And that was the end of the story of ");
    put(g, g->hero);
    put(g, ".\n\n");
}

zl_status zl_dataset_default(zl_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    gen g = {0};
    g.cap = CORPUS_TARGET_NBYTES + CORPUS_MAX_PARAGRAPH;
    g.buf = malloc(g.cap);
    if (!g.buf)
        return zl_errorf(ZL_ERR_NOMEM, "cannot allocate %zu bytes for the built-in corpus", g.cap);
    while (g.len < CORPUS_TARGET_NBYTES) paragraph(&g);

    char desc[128];
    snprintf(desc, sizeof desc, "built-in corpus (grammar stories, %zu bytes, vocab 256)", g.len);
    zl_status st = zl_dataset_from_text(ds, g.buf, g.len, desc);
    free(g.buf);
    return st;
}
