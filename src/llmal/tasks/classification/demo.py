"""The offline demo dataset. THIS DATASET IS SYNTHETIC.

`generate_demo` writes short German-language social-media comments about migration politics from
templates and word lists, deterministically from a seed. No text comes from a real person, no real
platform, no real event. It exists so that the pipeline runs end to end on a laptop without a
network, an API key or a licence question; it is a test bed, not research data, and no finding
about real discourse may be drawn from it.

How an item is made:

1. a topic (`border_control`, `labour_market`, `asylum_policy`, `culture_religion`, `crime`, or
   `unrelated` chatter that is not about migration);
2. the gold label (1 = hostile towards immigrants/migration) with a topic-dependent rate;
   `unrelated` items are never positive, though some of them are hostile about something else;
3. a style given the label (kept as `meta_style`): explicit or coded hostility, irony (on both
   sides), counter-speech that quotes hostile phrases, policy criticism without hostility,
   supportive, factual, a quoted hostile statement that the writer endorses or rejects (with a
   non-committal comment in about half of them), and "borderline" statements whose surface is
   shared by both labels, so that no text classifier can be perfect;
4. a latent ambiguity in [0, 1] drawn from a range per style (stored as `meta_ambiguity`);
5. the text, from a template of that style and topic, filled with slot words (groups, places,
   authorities, issues, numbers), with optional prefix, follow-up sentence and suffix;
6. three simulated human annotators (`ann_a1`, `ann_a2`, `ann_a3`) who flip the gold label with a
   probability that grows with the ambiguity; a1 over-flags hostility a little, a2 misses it a
   little, a3 is unbiased but noisier.

Same (n_items, seed) gives a byte-identical table (all randomness from one numpy Generator).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEMO_SOURCE = "synthetic"

DEMO_DESCRIPTION = (
    "The demo dataset is SYNTHETIC. llmal generates it itself from templates and word lists, "
    "deterministically from a seed: short German-language comments about migration politics "
    "(topics border_control, labour_market, asylum_policy, culture_religion, crime, and unrelated "
    "chatter), a gold label (hostile towards immigrants/migration or not), a latent ambiguity and "
    "three simulated human annotators who disagree more on ambiguous items. No text comes from a "
    "real person. It is a test bed for the pipeline, not research data: do not draw conclusions "
    "about real discourse, annotators or LLMs from it."
)


def describe_demo() -> str:
    """A plain statement, for the README and reports, that the demo data is synthetic."""
    return DEMO_DESCRIPTION


TOPICS = ("border_control", "labour_market", "asylum_policy", "culture_religion", "crime",
          "unrelated")
TOPIC_WEIGHTS = (0.18, 0.16, 0.17, 0.15, 0.14, 0.20)
# P(gold = hostile | topic); hostility about other things in `unrelated` is not positive
HOSTILE_RATE = {"border_control": 0.42, "labour_market": 0.25, "asylum_policy": 0.32,
                "culture_religion": 0.30, "crime": 0.45, "unrelated": 0.0}


@dataclass(frozen=True)
class Style:
    name: str
    ambiguity: tuple[float, float]  # uniform range of the latent ambiguity
    group_pejorative: float         # probability that {g} is a pejorative group word
    emoji: str                      # which emoji pool the suffix draws from


STYLES = {s.name: s for s in [
    Style("explicit", (0.00, 0.25), 0.50, "angry"),
    Style("quote_endorse", (0.35, 0.70), 0.40, "mixed"),
    Style("quote_reject", (0.35, 0.70), 0.40, "mixed"),
    Style("coded", (0.30, 0.65), 0.15, "mixed"),
    Style("ironic_hostile", (0.45, 0.80), 0.20, "mocking"),
    Style("borderline", (0.70, 1.00), 0.10, "mixed"),
    Style("supportive", (0.00, 0.25), 0.00, "warm"),
    Style("factual", (0.00, 0.15), 0.00, "none"),
    Style("counter_speech", (0.25, 0.55), 0.35, "mixed"),
    Style("critical", (0.30, 0.60), 0.00, "mixed"),
    Style("ironic_supportive", (0.45, 0.80), 0.20, "mocking"),
    Style("chatter", (0.00, 0.10), 0.00, "warm"),
    Style("hostile_other", (0.20, 0.50), 0.00, "angry"),
    Style("factual_other", (0.00, 0.10), 0.00, "none"),
]}
# P(style | gold) for migration topics, and P(style) for `unrelated`
STYLE_WEIGHTS_HOSTILE = {"explicit": 0.31, "coded": 0.25, "ironic_hostile": 0.12,
                         "borderline": 0.22, "quote_endorse": 0.10}
STYLE_WEIGHTS_NOT_HOSTILE = {"supportive": 0.25, "factual": 0.25, "counter_speech": 0.10,
                             "critical": 0.13, "ironic_supportive": 0.06, "borderline": 0.13,
                             "quote_reject": 0.08}
# the latent ambiguity of an item whose surface is shared by both labels (a quote with a
# non-committal comment such as "Ohne Worte.")
AMBIGUOUS_SURFACE_RANGE = (0.75, 1.00)
STYLE_WEIGHTS_UNRELATED = {"chatter": 0.50, "hostile_other": 0.30, "factual_other": 0.20}

# --- slot vocabularies ----------------------------------------------------------------------
# group words: (bare plural, with article, dative plural)
GROUPS_NEUTRAL = [
    ("Migranten", "die Migranten", "Migranten"),
    ("Flüchtlinge", "die Flüchtlinge", "Flüchtlingen"),
    ("Geflüchtete", "die Geflüchteten", "Geflüchteten"),
    ("Asylbewerber", "die Asylbewerber", "Asylbewerbern"),
    ("Zuwanderer", "die Zuwanderer", "Zuwanderern"),
    ("Einwanderer", "die Einwanderer", "Einwanderern"),
    ("Asylsuchende", "die Asylsuchenden", "Asylsuchenden"),
    ("Schutzsuchende", "die Schutzsuchenden", "Schutzsuchenden"),
    ("Ausländer", "die Ausländer", "Ausländern"),
]
GROUPS_PEJORATIVE = [
    ("Wirtschaftsflüchtlinge", "die Wirtschaftsflüchtlinge", "Wirtschaftsflüchtlingen"),
    ("Sozialtouristen", "die Sozialtouristen", "Sozialtouristen"),
    ("Glücksritter", "die Glücksritter", "Glücksrittern"),
    ("Asyltouristen", "die Asyltouristen", "Asyltouristen"),
    ("Asylanten", "die Asylanten", "Asylanten"),
]
CITIES = ["Berlin", "Hamburg", "München", "Köln", "Leipzig", "Dresden", "Frankfurt", "Duisburg",
          "Chemnitz", "Stuttgart", "Bremen", "Hannover", "Nürnberg", "Cottbus", "Essen", "Dortmund",
          "Magdeburg", "Kassel", "Gera", "Bautzen", "Rostock", "Mannheim", "Augsburg", "Passau"]
PLACES_EXTRA = ["bei uns im Viertel", "in unserer Kleinstadt", "am Bahnhof", "bei uns im Dorf",
                "in der Innenstadt", "im Ruhrgebiet", "auf dem Land", "bei uns im Landkreis",
                "in meiner Straße", "im Osten", "in den Großstädten", "hier in der Gegend"]
AUTHORITIES = ["die Regierung", "die Ampel", "die Bundesregierung", "die EU", "das Innenministerium",
               "die Landesregierung", "die Stadtverwaltung", "die Politik", "das Kanzleramt",
               "der Bundestag", "die Opposition", "der Landrat", "die Kommission in Brüssel"]
AUTHORITIES_SHORT = ["Regierung", "Ampel", "Berlin", "Brüssel", "Frau Ministerin", "Herr Landrat",
                     "liebe Politik", "Bundestag", "Kanzleramt"]
# statistics sources: (nominative, dative)
STAT_SOURCES = [("das BAMF", "dem BAMF"), ("das Statistische Bundesamt", "dem Statistischen Bundesamt"),
                ("das Innenministerium", "dem Innenministerium"), ("die Bundespolizei", "der Bundespolizei"),
                ("die Bundesagentur für Arbeit", "der Bundesagentur für Arbeit"),
                ("der Mediendienst Integration", "dem Mediendienst Integration"),
                ("das Landesamt", "dem Landesamt"), ("eine neue Studie", "einer neuen Studie"),
                ("der Migrationsbericht", "dem Migrationsbericht")]
MONTHS = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
          "Oktober", "November", "Dezember"]
# issues per topic, always usable as an accusative object ("über {issue}", "um {issue}")
ISSUES = {
    "border_control": ["die Kontrollen an der Grenze", "die Lage an der Außengrenze",
                       "die Zurückweisungen an der Grenze", "die Sicherung der Grenzen",
                       "die Balkanroute", "die Überfahrten übers Mittelmeer", "die Schleuser",
                       "die Grenze zu Polen", "die Grenzpolizei", "die Frontex-Einsätze",
                       "die Binnengrenzen", "die Zahlen an der Grenze zu Tschechien"],
    "labour_market": ["die Löhne in der Pflege", "die Jobs auf dem Bau", "die Fachkräfte",
                      "die Arbeitserlaubnis", "die Wohnungen in der Stadt", "die Mieten",
                      "die Sozialleistungen", "die Arbeitsagentur", "die Lehrstellen",
                      "die Anerkennung ausländischer Abschlüsse", "die Saisonarbeit",
                      "die Beschäftigungsquote"],
    "asylum_policy": ["die Asylverfahren", "die Abschiebungen", "die Duldung",
                      "die Obergrenze", "die sicheren Herkunftsstaaten", "die Unterkünfte",
                      "die Integrationskurse", "die Bezahlkarte", "die Asylanträge",
                      "die Verteilung auf die Kommunen", "die Rückführungen",
                      "die Erstaufnahme"],
    "culture_religion": ["die neue Moschee", "die Kopftuch-Debatte", "die Leitkultur",
                         "die Integration", "die Deutschkurse", "die Feiertage",
                         "die Parallelgesellschaften", "die Schulen", "die Traditionen",
                         "die Vielfalt", "die Religionsfreiheit", "die Sprache"],
    "crime": ["die Kriminalstatistik", "die Polizei", "die Sicherheit", "die Einbrüche",
              "die Clans", "die Straftaten", "die Videoüberwachung", "die Gerichte",
              "die Polizeiberichte", "die Gewalt in den Innenstädten", "die Silvesternacht",
              "die Taschendiebstähle"],
}
HASHTAGS = {
    "border_control": ["#Grenzschutz", "#Grenze", "#Frontex", "#Migration"],
    "labour_market": ["#Fachkräfte", "#Arbeitsmarkt", "#Pflege", "#Migration"],
    "asylum_policy": ["#Asyl", "#Abschiebung", "#Asylpolitik", "#Migration"],
    "culture_religion": ["#Integration", "#Leitkultur", "#Vielfalt", "#Islam"],
    "crime": ["#Sicherheit", "#Polizei", "#Kriminalität", "#Migration"],
    "unrelated": ["#Montag", "#Bahn", "#Fußball", "#Wetter"],
}
EMOJIS = {"angry": ["😡", "🤬", "👎", "‼️", "🙄"], "mocking": ["🙃", "🤡", "😂", "🙄", "👏"],
          "warm": ["❤️", "👍", "🙏", "😊", "💪"], "mixed": ["🤷", "🙄", "🤔", "😕", "👍"],
          "none": [""]}
HANDLE_PARTS = (["anna", "bernd", "carla", "deniz", "emre", "frank", "gabi", "heike", "ivan",
                 "jule", "kai", "lena", "mehmet", "nina", "olaf", "petra", "rolf", "sabine",
                 "tim", "ute", "yasemin", "wolle", "bürger", "oma", "papa", "nordlicht"],
                ["", "_", ".", "_der_", "", ""],
                ["", "k", "m", "berlin", "sachsen", "77", "1987", "ruhr", "nrw", "2000", "x"])
PREFIXES = ["Mal ehrlich: ", "Sorry, aber: ", "Zum Thema: ", "Ganz ehrlich? ", "Hmm. ", "Puh. ",
            "Leute! ", "Also: ", "Naja. ", "Gerade gelesen. ", "Ich sag's mal so: ", "Wow. ",
            "Jetzt mal im Ernst: ", "Kurze Frage: ", "Ok. "]

# --- templates ------------------------------------------------------------------------------
# slots: {g} bare plural, {G} same capitalised, {dg} with article, {Dg} capitalised, {ag} the
# form after alle/diese/keine, {gdat} dative plural, {p} place phrase, {city}, {auth}/{Auth} authority (nominative), {auth_short},
# {issue} (accusative object), {n} count, {k} small number, {pct} percent, {y} year, {month},
# {src}/{Src} a statistics source, {srcdat} the same in the dative. [[a|b|c]] picks one alternative (an empty one is allowed).
GENERIC = {
    "explicit": [
        "{G} raus, und zwar [[sofort|heute noch|ohne Ausnahme|alle]]!",
        "{Dg} [[kosten uns nur Geld|liegen uns nur auf der Tasche|sind nur ein Kostenfaktor]] und bringen nichts als [[Ärger|Probleme|Chaos]].",
        "Schickt {dg} endlich zurück, wir sind nicht das [[Sozialamt|Weltsozialamt|Auffanglager]] der Welt.",
        "Wann wacht ihr auf? {Dg} übernehmen {p} [[eine Straße nach der anderen|Viertel für Viertel|alles]].",
        "Ich will [[keine|einfach keine]] {ag} mehr in [[diesem Land|meiner Stadt|Deutschland]] sehen.",
        "{Dg} gehören nicht hierher, [[Punkt|fertig|Ende der Diskussion]].",
        "Jeder einzelne Euro für {g} ist ein Euro zu viel[[| für dieses Land| für unsere Steuerzahler]].",
        "{Dg} haben hier nichts verloren. [[Grenzen dicht und ab nach Hause|Alle zurück|Raus mit ihnen]]!",
        "{Dg} sind eine [[Last|Belastung|Zumutung]] für jedes Land, das sie aufnimmt.",
        "Mit {gdat} kommt nur [[Ärger|Gewalt und Ärger|Unruhe]], das sieht man {p} jeden Tag.",
        "Keinen Cent mehr für {g}! Die sollen [[dahin zurück, wo sie herkommen|wieder verschwinden|nach Hause gehen]].",
        "Diese [[Invasion|Masseneinwanderung|Überfremdung]] muss gestoppt werden, bevor es zu spät ist.",
        "{Dg} lachen sich [[doch|einfach]] über uns kaputt. Und {auth} schaut zu.",
        "Wer {g} verteidigt, hat nie {p} [[gewohnt|gelebt|nachts auf die Bahn gewartet]].",
        "{G}? Nein danke, [[davon haben wir genug|die brauchen wir hier nicht|wir sind voll]].",
        "Ich [[hasse|verachte|ertrage]] es, was {g} aus {city} gemacht haben.",
    ],
    "coded": [
        "Komisch, dass {p} seit {y} [[keiner|niemand|kaum einer]] mehr abends allein rausgeht. [[Reiner Zufall natürlich|Zufall, sicher|Aber ist bestimmt nur Zufall]].",
        "Man wird ja wohl noch fragen dürfen, wer das [[alles|am Ende|eigentlich]] bezahlen soll.",
        "Ich sag nur {y}. [[Wer es wissen will, weiß es|Mehr muss man nicht sagen|Noch Fragen?]]",
        "[[Irgendwann|Langsam|Schon lange]] ist das Boot [[halt|einfach|nun mal]] [[voll|voll, auch {p2}]].",
        "Die Frage ist nicht ob, sondern wann wir [[im eigenen Land|{p}]] fremd sind.",
        "Bald haben wir {p} Verhältnisse wie in deren [[Heimat|Herkunftsländern]].",
        "Wer {g} holt, holt sich die Probleme [[gleich mit ins Haus|gratis dazu|frei Haus]].",
        "Schaut euch {p} mal um und sagt mir dann noch mal was von [[Bereicherung|Vielfalt|Integration]].",
        "Meine [[Oma|Mutter|Nachbarin]] würde ihr eigenes Viertel {p} nicht mehr wiedererkennen.",
        "Es gibt [[Kulturen|Leute]], die passen einfach nicht zu [[uns|{city}]]. [[Das ist keine Meinung, das ist Erfahrung|Das sieht jeder, der Augen hat|Ist halt so]].",
        "Unsere Kinder werden uns [[fragen|eines Tages fragen]], warum wir das zugelassen haben.",
        "Die Einheimischen {p} sind [[längst|bald]] in der Minderheit, aber das darf man ja nicht sagen.",
        "Wie lange schauen wir noch zu, wie [[unser Land|unsere Heimat|{city}]] verschenkt wird?",
        "Nicht alle sind so, aber [[auffällig viele|erstaunlich viele|die meisten]] eben doch.",
        "[[Früher|Vor {k} Jahren]] war {city} mal eine [[schöne|ruhige|sichere]] Stadt. Mehr sag ich nicht.",
    ],
    "ironic_hostile": [
        "Klar, holen wir noch mehr {g}, läuft ja [[super|prima|bestens]] {p}.",
        "Fachkräfte, sagten sie. [[Ärzte und Ingenieure|Raketenwissenschaftler|Hochqualifiziert]], sagten sie.",
        "[[Bereicherung|Vielfalt|Buntheit]] pur, jeden Tag aufs Neue. Danke, {auth_short}!",
        "Herrlich, diese Vielfalt {p}. Man traut sich [[kaum noch|nicht mehr]] vor die Tür.",
        "Aber klar doch, das sind alles Einzelfälle. Schon der {k}. diese [[Woche|Monat|Saison]].",
        "Willkommenskultur [[deluxe|2.0|at its best]]: wir zahlen, die anderen kassieren.",
        "Noch ein paar tausend {g} mehr und {city} ist endlich richtig bunt.",
        "Wunderbar, {auth} hat wieder Geld für {g} gefunden. Für [[die Rente|die Schulen|die Straßen]] leider nicht.",
        "Ich freu mich schon auf die nächste Bereicherung {p}.",
        "Die Goldstücke {p} benehmen sich ja [[vorbildlich|wie immer tadellos|mustergültig]].",
    ],
    "borderline": [
        "{G} müssen sich [[halt|einfach]] an unsere Regeln halten. Wer das nicht will, muss gehen.",
        "Man muss auch mal sagen dürfen, dass nicht jeder [[hier|{p}]] bleiben kann.",
        "{city}: schon wieder eine neue Unterkunft. [[Irgendwann reicht es auch mal|Wie viele denn noch?|Mal sehen, wie das wird]].",
        "Ich hab nichts gegen {g}, aber über {issue} muss man reden dürfen.",
        "Wer kein Asyl bekommt, muss [[konsequent|sofort|auch wirklich]] zurück.",
        "Die Stimmung {p} kippt, und das kann man den Leuten nicht verübeln.",
        "Es kommen einfach zu viele auf einmal, das schafft [[keiner|keine Stadt|kein Land]].",
        "Wir können nicht die ganze Welt aufnehmen[[|, so hart das klingt|, das ist einfach Realität]].",
        "Ich fühle mich {p} nicht mehr so [[wohl|sicher]] wie früher.",
        "Integration ist eine Bringschuld, und viele {g} bringen sie nicht.",
        "{Dg} bekommen [[sofort|ganz schnell]] eine Wohnung, wir warten seit {k} Jahren.",
        "Ob das mit {gdat} so gut geht, wird man sehen.",
        "Über {issue} wird zu wenig offen gesprochen.",
        "Die Leute {p} haben Angst, und die Politik ignoriert das.",
        "[[{Auth}|Die Politik]] muss endlich [[handeln|durchgreifen|ehrlich sein]], was {issue} angeht.",
    ],
    "supportive": [
        "{G} sind [[Nachbarn, Kolleginnen und Freunde|Menschen wie du und ich|ein Teil von uns]]. Punkt.",
        "Danke an alle Ehrenamtlichen {p}, die {gdat} beim Ankommen helfen!",
        "Ich arbeite seit {k} Jahren mit {gdat} zusammen und habe nur gute Erfahrungen gemacht.",
        "Meine Nachbarn sind vor {k} Jahren als Geflüchtete gekommen. Heute sind sie [[Freunde|Familie|unersetzlich]].",
        "Menschen, die vor [[Krieg|Verfolgung|Gewalt]] fliehen, verdienen Schutz. [[So einfach ist das|Punkt|Immer]].",
        "Schön zu sehen, wie gut die Integration {p} funktioniert, wenn man die Leute lässt.",
        "Ohne Zuwanderung hätte {city} längst ein [[riesiges|echtes]] Problem. Gut, dass sie da sind.",
        "Vielfalt macht uns stärker, auch {p}.",
        "Ich bin froh, in einem Land zu leben, das [[Schutzsuchende|Menschen in Not]] aufnimmt.",
        "Wir haben {y} eine Familie aus [[Syrien|Afghanistan|der Ukraine|Eritrea]] unterstützt. Die Kinder sprechen heute besser Deutsch als ich.",
        "Hört auf, {g} gegen Einheimische auszuspielen. Wir sitzen alle im selben Boot.",
        "Respekt an alle {ag}, die {p} neu anfangen. Das braucht [[Mut|Kraft|viel Geduld]].",
        "Beim Sommerfest {p} haben {g} und Alteingesessene zusammen gekocht. [[Toller Tag|Wunderschön|So muss das sein]]!",
    ],
    "factual": [
        "Laut {srcdat} wurden im {month} rund {n} Erstanträge auf Asyl gestellt.",
        "{Src} meldet für {y} etwa {pct} Prozent mehr Einbürgerungen als im Vorjahr.",
        "{Auth} will im {month} neue Regeln für {issue} vorlegen.",
        "Heute Abend läuft eine [[Doku|Reportage|Talkshow]] über {issue}, Beginn [[20:15|21:45|22:15]] Uhr.",
        "Weiß jemand, wo man sich {p} als Ehrenamtliche für Sprachkurse melden kann?",
        "Im [[Stadtrat|Kreistag|Landtag]] {p2} wird am [[Montag|Dienstag|Donnerstag]] über {issue} beraten.",
        "Neue Zahlen: {n} Menschen sind im {month} über die Balkanroute gekommen.",
        "Kann jemand erklären, wie das rund um {issue} rechtlich genau geregelt ist?",
        "Die Anhörung über {issue} wurde auf {month} verschoben.",
        "Zum Nachlesen: Bericht über {issue} von {y}, Seite {k}.",
        "Infoabend über {issue} am {k}. {month} im Rathaus {city}.",
        "{Src}: {pct} Prozent der Zugewanderten von {y} sind inzwischen erwerbstätig.",
    ],
    "counter_speech": [
        "Wer hier '{G} raus' schreibt, sollte sich mal fragen, wo die eigenen [[Großeltern|Vorfahren]] herkamen.",
        "Das Gerede von [[kriminellen|faulen|gefährlichen]] {gdat} ist einfach nur [[widerlich|peinlich|menschenverachtend]] und falsch.",
        "Nein, {g} sind nicht an allem schuld. Schaut euch [[die Zahlen|die Statistik|die Fakten]] an.",
        "Schon wieder diese Hetze gegen {g}. Es reicht [[wirklich|langsam|endgültig]].",
        "'Das Boot ist voll' – diesen Spruch hab ich schon {y} nicht mehr hören können.",
        "Wer Menschen pauschal als [[Invasion|Flut|Problem]] bezeichnet, hat jede Debatte verloren.",
        "Ich schäme mich für die Kommentare hier. {G} sind keine Verbrecher.",
        "Diese ganze '[[Überfremdung|Umvolkung|Invasion]]'-Panik ist ein Märchen von ganz rechts.",
        "Wer Flüchtlinge als Schmarotzer beschimpft, sollte mal eine Woche in einer Unterkunft {p2} helfen.",
        "Kriminalität hat nichts mit der Herkunft zu tun, sondern mit [[Armut|Alter und Armut|sozialer Lage]]. Lest mal eine Studie.",
        "Hört endlich auf, Angst vor {gdat} zu schüren.",
        "'{G} raus' ist keine Meinung, sondern Hetze. [[Gemeldet|Blockiert|Traurig, so was hier zu lesen]].",
    ],
    "critical": [
        "Was {auth} sich für {issue} ausgedacht hat, ist [[ein komplettes Versagen|Murks|ein Desaster]], und das geht zulasten von allen, auch der Geflüchteten.",
        "Die Kommunen {p2} sind am Limit, es braucht mehr Geld vom Bund.",
        "Ich bin für Zuwanderung, aber [[die Verfahren|die Behörden {p}]] müssen deutlich schneller werden.",
        "[[Kontrollen|Regeln|Konsequenz]] kann man fordern, ohne gleich [[alle|alle {ag}|jeden]] unter Generalverdacht zu stellen.",
        "Das Chaos um {issue} ist ein Versagen der Behörden, nicht der Menschen, die kommen.",
        "Die Debatte über {issue} wird von allen Seiten viel zu aufgeregt geführt.",
        "{Auth} verspricht seit {k} Jahren Lösungen für {issue}. Passiert ist nichts.",
        "Wie schlecht das alles rund um {issue} organisiert ist, ärgert mich, für alle Beteiligten.",
        "Man kann Migration steuern wollen und trotzdem anständig mit [[Menschen|{gdat}]] umgehen.",
        "Mehr Personal für {issue}, dann klappt es auch mit der Integration.",
        "Ehrlich, die Diskussion über {issue} nervt. [[Weniger Symbolpolitik|Weniger Talkshows]], mehr Lösungen.",
    ],
    "ironic_supportive": [
        "Ja genau, {g} sind an allem schuld. Auch am [[Regen|Wetter|Stau]] und an der Bahn.",
        "Schlimm, diese {ag}, die {p} einfach die Pflegeheime am Laufen halten. Skandal!",
        "Oh nein, ein [[Dönerladen|Gemüseladen|Friseur]] mehr {p}. Das Abendland geht unter.",
        "Klar, das Boot ist voll. Mit Leuten, die keine Ahnung [[haben|von nichts haben]].",
        "Die schlimmste Invasion {p} sind immer noch die Touristen im Sommer.",
        "Unfassbar, {g} wollen arbeiten und dürfen nicht. Und dann heißt es, sie wären faul.",
        "Und wer hat schuld, dass [[das WLAN langsam ist|der Bus zu spät kommt]]? Richtig, die Migranten.",
        "Bereicherung? Ja, der beste [[Bäcker|Arzt|Schneider]] {p} kommt aus Syrien. Schlimm, schlimm.",
    ],
    "chatter": [
        "Weiß jemand, ob der Weihnachtsmarkt {p} dieses Jahr länger offen hat?",
        "Endlich Wochenende! Wer ist beim [[Spiel|Derby|Konzert|Stadtfest]] [[am Samstag|am Sonntag|{p}]] dabei?",
        "Suche ein [[gutes|schnelles|einfaches]] Rezept für [[Käsespätzle|Linsensuppe|Apfelkuchen|Rouladen|Kürbissuppe|Zwiebelkuchen]][[, am besten ohne Sahne|, am besten von Oma|| für {k} Personen]].",
        "Hat jemand {p} einen guten [[Zahnarzt|Hausarzt|Friseur]], der noch [[Patienten|Kunden]] nimmt?",
        "Das Wetter {p} ist heute einfach [[traumhaft|grauenhaft|perfekt zum Wandern]].",
        "Wer kann mir ein [[Fahrrad|Handy|Tablet|Auto]] für [[ungefähr|höchstens|so um die]] {k}00 Euro empfehlen[[| {p}]]?",
        "Glückwunsch an den Verein aus {city} zum [[Aufstieg|Pokalsieg|Klassenerhalt]]!",
        "Mein [[Hund|Kater|Sohn|Papagei]] hat [[heute|gestern|diese Woche]] zum ersten Mal [[Sitz gemacht|durchgeschlafen|'Hallo' gesagt]], ich bin so stolz.",
        "Was [[lest|hört|schaut]] ihr gerade? Ich brauche [[neue Bücher|Tipps|Empfehlungen]] für [[den Urlaub|den Winter|die Zugfahrt nach {city}|die Feiertage]].",
        "Flohmarkt am {k}. {month} {p}, kommt vorbei!",
        "Schöne Grüße aus {city}, hier [[scheint die Sonne|regnet es seit Tagen|liegt Schnee]].",
        "Gibt es {p} noch Kinos, die Originalfassungen zeigen?",
    ],
    "hostile_other": [
        "Die Bahn ist einfach nur ein Witz. Schon wieder {k}0 Minuten Verspätung, ich könnte [[ausrasten|schreien|durchdrehen]]!",
        "{Auth} kriegt nichts auf die Reihe, diese Versager gehören alle [[abgewählt|gefeuert|rausgeworfen]].",
        "Der Schiedsrichter [[gestern|am Samstag]] war eine absolute Frechheit. Weg mit dem!",
        "Diese [[Radfahrer|Autofahrer|E-Scooter-Fahrer]] {p} sind eine Plage, die halten sich an keine einzige Regel.",
        "[[Trainer|Vorstand]] raus, und zwar sofort! Diese Mannschaft ist eine Schande.",
        "Die Raser {p} gehören alle weggesperrt.",
        "Diese [[Influencer|Talkshow-Gäste|Promis]] sind das Letzte, die sollen endlich verschwinden.",
        "[[Der Vermieter|Mein Chef|Der Hausmeister]] ist ein [[Abzocker|Idiot|Witz]], ich [[hasse|verachte|ertrage]] diesen Kerl [[nicht mehr|einfach|so sehr]].",
        "Die [[Telefonhotline|Paketzustellung|Stadtverwaltung|Müllabfuhr]] {p} ist eine Zumutung, wer sich das ausgedacht hat, gehört [[gefeuert|entlassen]].",
        "Schon wieder Baustelle {p}. Die Stadtverwaltung ist komplett unfähig.",
        "Die Fans aus {city} sind einfach nur asozial.",
        "Diese [[Lobbyisten|Bankmanager|Konzernbosse|Spekulanten]] machen [[unser Land|alles|{city}]] kaputt, jeder einzelne.",
        "Die Touristen {p} sind jedes Jahr eine Invasion. [[Bleibt zu Hause|Haut ab|Nervt einfach]]!",
        "Diese [[Radfahrer|Raser|Poser mit ihren Autos]] gehören nicht hierher, [[Punkt|fertig]].",
        "[[Die Fans aus {city}|Die Auswärtsfans|Die Junggesellenabschiede]] raus aus unserer Stadt, und zwar sofort!",
        "Die Großstädter, die {p} Wochenendhäuser kaufen, sollen bleiben, wo sie herkommen.",
        "Keinen Cent mehr für [[die Banken|die Autoindustrie|die Bahn-Manager|die Diäten im Bundestag]]! [[Es reicht|Schluss damit]].",
        "[[Die Politiker|Die Manager|Die Funktionäre]] lachen sich über uns kaputt, und wir zahlen.",
    ],
    "factual_other": [
        "Ab [[Montag|Mittwoch|nächster Woche]] ist die Brücke {p} wegen Bauarbeiten gesperrt.",
        "Der Stadtrat {p2} hat den neuen Haushalt beschlossen.",
        "Die Buslinie {k} fährt ab {month} im [[Zehn|Zwanzig]]-Minuten-Takt.",
        "Laut Wetterdienst wird es am Wochenende bis zu 2{k} Grad warm.",
        "{Src} meldet für {y} einen leichten Anstieg der Geburten.",
        "Das [[Freibad|Museum|Hallenbad]] {p} öffnet am {k}. {month}.",
        "Die Stadtbibliothek {p} hat jetzt auch sonntags geöffnet.",
        "Die Mieten in {city} sind im letzten Jahr um {pct} Prozent gestiegen.",
    ],
}

# topic-specific templates for the migration styles (added to the generic ones)
TOPICAL: dict[str, dict[str, list[str]]] = {
    "border_control": {
        "explicit": ["Grenzen zu, und zwar komplett. [[Keiner kommt mehr rein|Niemand mehr rein|Schluss jetzt]]!",
                     "Jeder, der illegal über die Grenze kommt, muss sofort zurückgeschickt werden. [[Ohne Ausnahme|Ohne Diskussion|Alle]].",
                     "Baut endlich einen Zaun, bevor {city} komplett überrannt wird.",
                     "[[Boote|Schiffe]] zurück nach [[Afrika|Libyen|Tunesien]], sofort!"],
        "coded": ["Andere Länder schützen ihre Grenzen. Nur wir sind zu [[feige|naiv|dumm]].",
                  "Ein Land ohne [[Grenzen|Grenzschutz]] ist kein Land mehr.",
                  "Ich frag mich, wer die alle [[reinlässt|über die Grenze lässt]] und warum."],
        "ironic_hostile": ["Grenzkontrollen? Nein, lieber noch ein paar Busse mehr, {auth_short}!",
                           "Offene Grenzen, was soll schon schiefgehen[[|, {auth_short}]]."],
        "borderline": ["Die Grenze [[zu Polen|zu Österreich|]] muss endlich richtig kontrolliert werden.",
                       "Wer an der Grenze keinen Pass hat, muss [[zurückgewiesen werden|direkt zurück]].",
                       "Die Schleuser verdienen sich dumm und dämlich und [[wir schauen zu|{auth} schaut zu]]."],
        "supportive": ["Niemand sollte im Mittelmeer ertrinken müssen. Seenotrettung ist [[Pflicht|kein Verbrechen|Menschenpflicht]].",
                       "Hinter jeder Zahl an der Grenze steht ein Mensch mit einer [[Geschichte|Familie|Hoffnung]]."],
        "factual": ["Die Bundespolizei hat im {month} an der Grenze zu [[Österreich|Polen|Tschechien]] {n} Personen kontrolliert.",
                    "Die Grenzkontrollen zu [[Polen|Österreich|der Schweiz]] wurden bis {month} verlängert."],
        "counter_speech": ["Von 'Grenzen dicht' träumen und dann im Urlaub über Passkontrollen jammern. [[Genau mein Humor|Typisch|Herrlich]].",
                           "Wer von '[[Überrennen|Flut|Welle]]' redet, war noch nie an einer Grenze."],
        "critical": ["Grenzkontrollen kosten viel und bringen wenig, das sagt sogar [[die Polizeigewerkschaft|{src}]].",
                     "Die EU muss die Außengrenze gemeinsam regeln, statt dass jedes Land sein eigenes Ding macht[[| wie {auth}]]."],
        "ironic_supportive": ["Grenzen dicht! Aber bitte erst nach meinem [[Mallorca|Türkei|Kroatien]]-Urlaub."],
    },
    "labour_market": {
        "explicit": ["Die nehmen uns die Jobs [[weg|{p} weg]] und kassieren nebenbei noch Bürgergeld.",
                     "{Dg} drücken die Löhne, und der deutsche Arbeiter zahlt die Zeche.",
                     "Erst arbeiten, dann Ansprüche stellen. {Dg} wollen nur kassieren.",
                     "Für {g} ist immer Geld da, für unsere Rentner nicht. [[Widerlich|Ekelhaft|Eine Schande]]."],
        "coded": ["Komisch, dass die Wohnungen {p} immer an bestimmte Leute gehen.",
                  "Wer arbeiten will, findet Arbeit[[| {p}]]. Manche wollen halt nicht.",
                  "Seit die Neuen da sind, bekommt man {p} keinen Termin mehr beim Amt."],
        "ironic_hostile": ["Fachkräfte? Die einzige Fachkraft, die ich {p} sehe, ist die fürs Jobcenter.",
                           "Toll, noch mehr Konkurrenz um die billigen Wohnungen. Danke, {auth_short}!"],
        "borderline": ["Wer hier herkommt, soll auch arbeiten. Das ist doch nicht zu viel verlangt[[|, {auth_short}]].",
                       "Die Konkurrenz um günstige Wohnungen ist {p} brutal geworden.",
                       "Erst die eigenen Arbeitslosen [[in Jobs bringen|vermitteln]], dann Fachkräfte holen."],
        "supportive": ["In unserer Pflegestation arbeiten Kolleginnen aus {k} Ländern. Ohne sie ginge nichts.",
                       "Mein Ausbilder kam vor {k} Jahren als Flüchtling. Bester Chef, den ich je hatte."],
        "factual": ["Die Bundesagentur für Arbeit meldet {n} offene Stellen in der [[Pflege|Gastronomie|Logistik]].",
                    "Die Beschäftigungsquote von Geflüchteten ist {y} auf {pct} Prozent gestiegen."],
        "counter_speech": ["'Die nehmen uns die Jobs weg' – welche Jobs genau? [[Den Spargel sticht hier sonst keiner|Die Pflege macht sonst keiner]].",
                           "Das Märchen von den Sozialschmarotzern hält sich [[hartnäckig|seit {y}]], stimmt aber einfach nicht."],
        "critical": ["Die Anerkennung von Abschlüssen dauert [[Jahre|{k} Jahre]]. So verschwenden wir Talente.",
                     "Arbeitsverbote für Geflüchtete sind [[absurd|Unsinn]], die Leute wollen doch arbeiten."],
        "ironic_supportive": ["Skandal: Migranten nehmen uns die Nachtschichten [[in der Pflege|im Krankenhaus|auf dem Bau]] weg!"],
    },
    "asylum_policy": {
        "explicit": ["Abschieben, abschieben, abschieben. Alle, und zwar [[heute noch|sofort|gestern]].",
                     "Asyl ist für [[die meisten|fast alle|neun von zehn]] nur ein Vorwand, um hier abzukassieren.",
                     "Diese Asylindustrie gehört abgeschafft, und {dg} gleich mit zurückgeschickt.",
                     "Keiner von denen ist verfolgt, die wollen nur [[unser Geld|unsere Sozialleistungen|kassieren]]."],
        "coded": ["[[Erstaunlich|Witzig|Seltsam]], wie viele Verfolgte ihren Pass verlieren, aber nie ihr [[Handy|Smartphone]].",
                  "Ein echter Flüchtling bleibt im ersten sicheren Land. [[Denkt mal drüber nach|Nur so als Gedanke|Warum also {city}?]]",
                  "Die Unterkunft {p} kostet mehr als das Altenheim nebenan. Ich sag ja nur."],
        "ironic_hostile": ["Abschiebung? Nein, lieber noch eine Duldung und noch eine. [[Läuft|Top|Weiter so, {auth_short}]].",
                           "Asylgrund: hat gehört, dass es [[hier|in Deutschland|{p}]] Geld gibt."],
        "borderline": ["Abgelehnte Asylbewerber müssen auch wirklich gehen, sonst ist das System [[unglaublich|nicht glaubwürdig|eine Farce]].",
                       "Eine Obergrenze wäre [[ehrlicher|besser für alle|vernünftiger]] als dieses [[Hin und Her|Rumgeeiere|ewige Gezerre]].",
                       "Die Unterkunft {p} ist zu groß für so einen kleinen Ort."],
        "supportive": ["Asyl ist ein Menschenrecht, kein [[Gnadenakt|Geschenk|Almosen]].",
                       "Die Familie aus unserer Unterkunft {p} hat endlich ihren Bescheid. Wir haben gefeiert!"],
        "factual": ["Das BAMF hat im {month} über {n} Asylanträge entschieden.",
                    "Die durchschnittliche Dauer eines Asylverfahrens lag {y} bei {k} Monaten."],
        "counter_speech": ["'Asyltouristen' – wer so redet, hat noch nie mit einem Menschen aus [[Syrien|Afghanistan|dem Irak]] gesprochen.",
                           "Nein, Asyl ist kein Vorwand. Lest [[die Schutzquoten|die Zahlen vom BAMF|die Urteile]], bevor ihr hetzt."],
        "critical": ["Die Verfahren dauern [[viel zu lange|oft {k} Jahre]], das ist für alle Seiten unfair.",
                     "Die Bezahlkarte ist Symbolpolitik und kostet [[mehr, als sie bringt|die Kommunen {p2} nur Geld]]."],
        "ironic_supportive": ["Unglaublich, Geflüchtete wollen eine Wohnung mit [[Fenstern|Heizung|fließend Wasser]]. Was für Ansprüche!"],
    },
    "culture_religion": {
        "explicit": ["Der Islam gehört nicht zu Deutschland und [[wird es nie|hat hier nichts verloren]].",
                     "Noch eine Moschee {p}? Nur über meine Leiche.",
                     "Wer unsere Kultur nicht mag, soll gefälligst [[verschwinden|abhauen|gehen]].",
                     "{Dg} verachten alles, was uns wichtig ist."],
        "coded": ["Bald heißt der Weihnachtsmarkt {p} nur noch Wintermarkt. Ratet mal, warum.",
                  "In der Klasse meiner [[Tochter|Nichte|Enkelin]] spricht kaum noch jemand Deutsch. Schöne neue Welt.",
                  "Parallelgesellschaften {p} entstehen nicht von allein."],
        "ironic_hostile": ["Toleranz ist, wenn wir uns anpassen und {dg} nicht müssen.",
                           "Wie schön, {p} hört man jetzt fünfmal am Tag den Muezzin. Bereicherung!"],
        "borderline": ["Wer hier lebt, sollte Deutsch lernen. Das ist keine [[Schikane|Zumutung|Ausgrenzung]].",
                       "Beim [[Schwimmunterricht|Sportunterricht]] gibt es keine Ausnahmen, für niemanden.",
                       "Unsere [[Traditionen|Feste|Bräuche]] sollten nicht für andere geopfert werden."],
        "supportive": ["Beim Fastenbrechen {p} waren alle eingeladen, es war ein wunderschöner Abend.",
                       "Meine [[Tochter|Nichte|Kollegin]] hat eine beste Freundin mit Kopftuch. Die beiden sind unzertrennlich."],
        "factual": ["In {city} eröffnet am {k}. {month} ein interreligiöses Begegnungszentrum.",
                    "Eine Umfrage zeigt: {pct} Prozent finden, Integration gelingt eher gut."],
        "counter_speech": ["'Der Islam gehört nicht zu Deutschland' – [[Millionen Muslime|meine Nachbarn]], die hier leben, sehen das anders.",
                           "Das Märchen vom verbotenen [[Weihnachtsmarkt|Martinsumzug|Osterfest]] kommt jedes Jahr wieder. [[Stimmt immer noch nicht|Auch {p}]]."],
        "critical": ["Religionsunterricht sollte für alle gleich geregelt sein, ohne [[Sonderwege|Ausnahmen]].",
                     "Die Integrationskurse {p} sind überfüllt, da muss [[das Land|{auth}]] nachbessern."],
        "ironic_supportive": ["Oh Gott, ein Kopftuch im [[Supermarkt|Bus|Elternabend]]. Ruft sofort die Polizei!"],
    },
    "crime": {
        "explicit": ["Kriminelle Ausländer sofort raus, [[ohne Wenn und Aber|und zwar alle|keine zweite Chance]]!",
                     "{Dg} bringen die Gewalt in unsere Städte.",
                     "Seit {dg} da sind, ist {city} ein Kriminalitätsschwerpunkt. Abschieben!",
                     "Jeder zweite Einbruch {p} geht auf deren Konto."],
        "coded": ["Täterbeschreibung: südländisches Aussehen. [[Wie immer, ich sag ja nichts|Überraschung|Wer hätte das gedacht]].",
                  "Die Polizei {p2} darf die Herkunft der Täter nicht nennen. Warum wohl?",
                  "Früher konnte man {p} nachts noch allein nach Hause gehen."],
        "ironic_hostile": ["Schon wieder ein Einzelfall {p}. Die Einzelfälle häufen sich.",
                           "Messer im Rucksack gehört {p} jetzt wohl zur Folklore."],
        "borderline": ["Wer hier straffällig wird, hat sein Gastrecht verwirkt[[|, ganz einfach|. Punkt]].",
                       "Die Polizei {p2} ist völlig überfordert, und alle wissen warum.",
                       "Ich lasse meine Tochter {p} abends nicht mehr allein raus."],
        "supportive": ["Mein Nachbar aus [[Afghanistan|Syrien|Eritrea]] hat letzte Woche einen Einbrecher verjagt. Held!",
                       "Die meisten Geflüchteten sind viel öfter Opfer als Täter[[|, auch {p}]]."],
        "factual": ["Die Polizei {p2} meldet für {y} {pct} Prozent weniger Einbrüche.",
                    "Laut Kriminalstatistik gab es {y} rund {n} Fälle von Taschendiebstahl."],
        "counter_speech": ["'Südländisches Aussehen' ist keine Täterbeschreibung, sondern ein [[Vorurteil|Klischee]].",
                           "Schon wieder wird ein Verbrechen {p} benutzt, um gegen alle Geflüchteten zu hetzen."],
        "critical": ["Mehr Polizei [[auf der Straße|{p}]] hilft allen, Einheimischen wie Zugezogenen.",
                     "Die Kriminalstatistik wird ständig falsch gelesen, auch von [[der Politik|den Medien|der Polizei]]."],
        "ironic_supportive": ["Klar, der [[Fahrraddieb|Einbrecher]] war bestimmt ein Migrant. War dann der Nachbarsjunge. Ups."],
    },
}

# quotes of a hostile statement: the comment after it decides the label (or leaves it open)
QUOTE_OPENERS = ["Mein [[Nachbar|Onkel|Kollege|Schwager|Vater]] [[meint|sagt immer|hat gestern gesagt]]:",
                 "Gerade im [[Bus|Zug|Wartezimmer|Supermarkt]] gehört:",
                 "Kommentar unter dem [[Artikel|Video|Post]]:", "Hab heute [[gelesen|gehört]]:",
                 "Stand so in der [[Gruppe|Dorfgruppe|Elterngruppe]]:", "Am Stammtisch hieß es:",
                 "Zitat aus dem [[Elternchat|Vereinschat|Familienchat]]:",
                 "Plakat {p}:", "Jemand hat mir {p} gesagt:"]
QUOTE_CLOSERS = {
    "quote_endorse": ["Recht hat er.", "Dem ist nichts hinzuzufügen.", "Genau so ist es.",
                      "Endlich sagt's mal einer.", "Unterschreibe ich sofort.",
                      "Wo er recht hat, hat er recht.", "100 Prozent Zustimmung.",
                      "Besser kann man es nicht sagen."],
    "quote_reject": ["Ich kann's nicht mehr hören.", "Einfach nur traurig.",
                     "Wie kann man so denken?", "Da fehlen mir die Worte.",
                     "Und sowas wird hier geliked?", "Peinlich.", "Widerspruch ist Pflicht.",
                     "Ich hab ihm ordentlich widersprochen."],
    "shared": ["Tja.", "Ohne Worte.", "Kein Kommentar.", "Was sagt man dazu?", "Hm.",
               "Das ist die Stimmung hier.", "So sieht's aus {p}."],
}
P_SHARED_CLOSER = 0.45
# a sentence of context that says nothing about the stance
CONTEXTS = ["Gestern in den Nachrichten gesehen.", "Heute beim Bäcker wieder Thema.",
            "Schon wieder Talkshow zu dem Thema.", "Zum Artikel von heute:",
            "Antwort an alle hier:", "Kurz zum Video:", "Zum Thread von gestern:",
            "Nach dem Elternabend gestern:", "Hab lange überlegt, ob ich was schreibe.",
            "Bin ja sonst eher still hier."]

TAILS = {
    "hostile": ["Wacht endlich auf!", "Es reicht!", "Das sagt einem der gesunde Menschenverstand.",
                "Ich hab die Schnauze voll.", "Deutschland schafft sich ab.",
                "Aber wehe, man sagt was.", "Wählt endlich anders!"],
    "not_hostile": ["Mehr Menschlichkeit bitte.", "Quelle im Link.", "Bleibt sachlich, Leute.",
                    "Das gehört auch zur Wahrheit.", "Gemeinsam schaffen wir das.",
                    "Mehr dazu im Link."],
    "shared": ["Wie seht ihr das?", "Meine Meinung.", "Traurig.", "Unglaublich.",
               "Ist einfach so.", "Denkt mal drüber nach.", "Nur meine Erfahrung.",
               "Mal sehen, wie lange das noch gut geht.", "Kann man so sehen oder nicht."],
    "none": [""],
}
TAIL_POOL_BY_STYLE = {
    "explicit": "hostile", "coded": "shared", "ironic_hostile": "shared", "borderline": "shared",
    "supportive": "not_hostile", "factual": "none", "counter_speech": "not_hostile",
    "critical": "shared", "ironic_supportive": "shared", "chatter": "none",
    "quote_endorse": "none", "quote_reject": "none",
    "hostile_other": "hostile", "factual_other": "none",
}

# simulated annotators: P(flip) = base + SLOPE * ambiguity**1.5 + bias[gold], clipped to [0, 0.5]
ANNOTATOR_SLOPE = 0.42
ANNOTATORS = {  # name -> (base, bias when gold is not_hostile, bias when gold is hostile)
    "a1": (0.02, 0.05, -0.02),   # over-flags hostility a little
    "a2": (0.02, -0.01, 0.06),   # misses hostility a little
    "a3": (0.05, 0.00, 0.00),    # unbiased, noisier
}


def _pick(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _pick_weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


_ALTERNATIVES = re.compile(r"\[\[(.*?)\]\]")


def _fill(template: str, slots: dict[str, str], rng: np.random.Generator) -> str:
    """Resolve [[a|b]] alternatives left to right, then the {slot} fields."""
    text = _ALTERNATIVES.sub(lambda m: _pick(rng, m.group(1).split("|")), template)
    return text.format_map(slots)


def _capitalise(s: str) -> str:
    return s[:1].upper() + s[1:]


def _slots(rng: np.random.Generator, topic: str, style: Style) -> dict[str, str]:
    """Draw every slot value, in a fixed order (so the stream of draws is deterministic)."""
    groups = GROUPS_PEJORATIVE if rng.random() < style.group_pejorative else GROUPS_NEUTRAL
    bare, with_article, dative = groups[int(rng.integers(len(groups)))]
    city = _pick(rng, CITIES)
    place = f"in {city}" if rng.random() < 0.6 else _pick(rng, PLACES_EXTRA)
    auth = _pick(rng, AUTHORITIES)
    src, src_dative = STAT_SOURCES[int(rng.integers(len(STAT_SOURCES)))]
    issue_topic = topic if topic in ISSUES else _pick(rng, list(ISSUES))
    return {
        "g": bare, "G": _capitalise(bare), "dg": with_article, "Dg": _capitalise(with_article),
        "gdat": dative, "ag": with_article.removeprefix("die "), "city": city, "p": place,
        "p2": f"in {city}", "auth": auth, "Auth": _capitalise(auth),
        "auth_short": _pick(rng, AUTHORITIES_SHORT), "issue": _pick(rng, ISSUES[issue_topic]),
        "n": f"{int(rng.integers(2, 98)) * 1000 + int(rng.integers(0, 10)) * 100:,}".replace(",", "."),
        "k": str(int(rng.integers(2, 10))), "pct": str(int(rng.integers(3, 40))),
        "y": str(int(rng.integers(2014, 2025))), "month": _pick(rng, MONTHS),
        "src": src, "Src": _capitalise(src), "srcdat": src_dative,
    }


def _handle(rng: np.random.Generator) -> str:
    return "@" + "".join(_pick(rng, part) for part in HANDLE_PARTS)


def _templates(topic: str, style_name: str) -> list[str]:
    templates = list(GENERIC[style_name])
    if topic in TOPICAL and style_name in TOPICAL[topic]:
        # topical templates are fewer; weight them up so topics read differently
        templates += TOPICAL[topic][style_name] * 2
    return templates


def _core_text(rng: np.random.Generator, topic: str, style: Style) -> tuple[str, bool]:
    """The comment before decoration, and whether its surface leaves the label open."""
    if style.name not in ("quote_endorse", "quote_reject"):
        return _fill(_pick(rng, _templates(topic, style.name)), _slots(rng, topic, style), rng), False
    inner_style = STYLES["explicit" if rng.random() < 0.5 else "coded"]
    inner = _fill(_pick(rng, _templates(topic, inner_style.name)), _slots(rng, topic, style), rng)
    opener = _fill(_pick(rng, QUOTE_OPENERS), _slots(rng, topic, style), rng)
    shared = bool(rng.random() < P_SHARED_CLOSER)
    closer = _pick(rng, QUOTE_CLOSERS["shared" if shared else style.name])
    closer = _fill(closer, _slots(rng, topic, style), rng)
    return f"{opener} „{inner}“ {closer}", shared


def _compose_text(rng: np.random.Generator, topic: str, style: Style) -> tuple[str, bool]:
    core, ambiguous_surface = _core_text(rng, topic, style)

    # decorations: each is drawn every time so the random stream does not depend on the choices
    u_prefix, u_tail, u_suffix, u_case, u_handle, u_context = rng.random(6)
    prefix = _pick(rng, PREFIXES)
    tail = _pick(rng, TAILS[TAIL_POOL_BY_STYLE[style.name]])
    emoji = _pick(rng, EMOJIS[style.emoji])
    hashtag = _pick(rng, HASHTAGS[topic])
    handle = _handle(rng)
    context = _pick(rng, CONTEXTS)
    ending_kind = int(rng.integers(4))

    text = core
    if u_context < 0.15 and topic != "unrelated":
        text = f"{context} {text}"
    elif u_prefix < 0.22:
        text = prefix + text
    if tail and u_tail < 0.35:
        text = f"{text} {tail}"
    if u_handle < 0.12:
        text = f"{handle} {text}"
    if u_suffix < 0.45:
        ending = [f" {emoji}", f" {hashtag}", f" {emoji}{emoji}", f" {hashtag} {emoji}"][ending_kind]
        text = (text + ending).rstrip()
    if u_case < 0.10:
        text = text.lower()
    return text, ambiguous_surface


def _annotate(rng: np.random.Generator, gold: np.ndarray, ambiguity: np.ndarray) -> dict[str, pd.Series]:
    out = {}
    for name, (base, bias_not, bias_hostile) in ANNOTATORS.items():
        bias = np.where(gold == 1, bias_hostile, bias_not)
        p_flip = np.clip(base + ANNOTATOR_SLOPE * ambiguity ** 1.5 + bias, 0.0, 0.5)
        flip = rng.random(len(gold)) < p_flip
        out[f"ann_{name}"] = pd.array(np.where(flip, 1 - gold, gold), dtype="Int64")
    return out


# classes=3: the label of each (binary label, style); the binary stream of draws is unchanged
THREE_CLASS_NAMES = ("neutral", "critical_civil", "hostile")
CRITICAL_CIVIL_STYLES = ("critical", "counter_speech", "quote_reject", "borderline")


def three_class_gold(gold: np.ndarray, styles: pd.Series) -> np.ndarray:
    """0 neutral, 1 critical but civil (policy criticism, counter-speech, a rejected quote, a
    borderline remark that is not hostile), 2 hostile."""
    civil = styles.isin(CRITICAL_CIVIL_STYLES).to_numpy()
    return np.where(gold == 1, 2, np.where(civil, 1, 0)).astype(np.int64)


def _annotate_three(rng: np.random.Generator, gold: np.ndarray, ambiguity: np.ndarray) -> dict[str, pd.Series]:
    """Three simulated annotators over three ordered classes: an error moves one class over
    (neutral <-> critical_civil <-> hostile), with the flip rates of the binary annotators."""
    out = {}
    for name, (base, bias_not, bias_hostile) in ANNOTATORS.items():
        bias = np.where(gold == 2, bias_hostile, bias_not)
        p_flip = np.clip(base + ANNOTATOR_SLOPE * ambiguity ** 1.5 + bias, 0.0, 0.5)
        flip = rng.random(len(gold)) < p_flip
        up = rng.random(len(gold)) < 0.5
        step = np.where(gold == 0, 1, np.where(gold == 2, -1, np.where(up, 1, -1)))
        out[f"ann_{name}"] = pd.array(np.where(flip, gold + step, gold), dtype="Int64")
    return out


def generate_demo(n_items: int = 3000, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    """Generate the SYNTHETIC demo dataset as an items table (contract in llmal.contracts).

    classes=3 relabels the same texts as neutral (0) / critical_civil (1) / hostile (2)
    (THREE_CLASS_NAMES) and draws three-class annotators; classes=2 is the binary task.

    Columns: id ("demo-00001", ...), text, gold (0 not_hostile, 1 hostile), topic, source
    ("synthetic"), ann_a1/ann_a2/ann_a3 (Int64), meta_ambiguity (float in [0, 1], the latent
    ambiguity that drives annotator disagreement), meta_style (the template family, e.g.
    "ironic_hostile", "counter_speech", "borderline"). Deterministic in (n_items, seed).
    """
    if n_items < 1:
        raise ValueError(f"dataset.n_items must be at least 1, got {n_items}")
    if classes not in (2, 3):
        raise ValueError(f"dataset.classes must be 2 or 3, got {classes}")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        topic = TOPICS[int(rng.choice(len(TOPICS), p=np.array(TOPIC_WEIGHTS) / sum(TOPIC_WEIGHTS)))]
        gold = int(rng.random() < HOSTILE_RATE[topic])
        if topic == "unrelated":
            weights = STYLE_WEIGHTS_UNRELATED
        else:
            weights = STYLE_WEIGHTS_HOSTILE if gold else STYLE_WEIGHTS_NOT_HOSTILE
        style = STYLES[_pick_weighted(rng, weights)]
        text, ambiguous_surface = _compose_text(rng, topic, style)
        lo, hi = AMBIGUOUS_SURFACE_RANGE if ambiguous_surface else style.ambiguity
        ambiguity = float(np.clip(rng.uniform(lo, hi) + rng.normal(0.0, 0.03), 0.0, 1.0))
        rows.append((f"demo-{i + 1:05d}", text, gold, topic, round(ambiguity, 4), style.name))

    df = pd.DataFrame(rows, columns=["id", "text", "gold", "topic", "meta_ambiguity", "meta_style"])
    df["gold"] = df["gold"].astype("int64")
    df["source"] = DEMO_SOURCE
    annotations = _annotate(rng, df["gold"].to_numpy(), df["meta_ambiguity"].to_numpy())
    if classes == 3:
        df["gold"] = three_class_gold(df["gold"].to_numpy(), df["meta_style"])
        annotations = _annotate_three(rng, df["gold"].to_numpy(), df["meta_ambiguity"].to_numpy())
    for col, values in annotations.items():
        df[col] = values
    return df[["id", "text", "gold", "topic", "source", *annotations, "meta_ambiguity",
               "meta_style"]]
