"""Writes examples/data/common-crawl-sample.warc.gz - the input of examples/common_crawl.yaml:
a small WARC shaped like a Common Crawl file (warcinfo, then request/response/metadata per
URL, one gzip member per record), deterministic, every page written by this project except
the two benchmark items quoted verbatim from the bundled GSM8K and HumanEval copies.

It is built so that every step of the recipe has something to remove:
- read: a 404, a 301, a PDF and a JPEG (responses that are not HTML documents);
- extract: a photo gallery and an app shell without main text;
- langid: articles in German, French, Spanish and Italian;
- quality: a link directory, a page of repeated advertising lines, a theme demo with
  placeholder text, a price list, a CSS snippet page, a packing list, a cookie wall and a
  stub;
- dedup_exact: one article syndicated twice and another copied once, word for word;
- dedup_minhash: three copies with small edits (an attribution added, figures changed, a
  sentence added);
- license (annotate only): pages under CC BY, CC BY-SA and CC BY-NC, and pages with none;
- decontam: a page quoting a GSM8K test question with its answer, and one quoting a
  HumanEval prompt. A third page writes about benchmarks without quoting any.
Everything else is a plain English article that should come out of every step unchanged.

    python examples/make_common_crawl_sample.py
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
BENCH = HERE / "data" / "bench"
DATE = "2026-02-03T10:15:00Z"
FILENAME = "common-crawl-sample.warc.gz"
ID_NAMESPACE = uuid.UUID("6f1c3a52-0c4e-4d55-9a1e-2b7d0e5c9a10")  # fixed: stable record ids


@dataclass(frozen=True)
class Site:
    host: str
    name: str
    footer: str = ""   # HTML inside <footer>
    head: str = ""     # extra <head> markup (a <link rel=license>)


CC = "https://creativecommons.org/licenses"
SITES = {
    "harbour": Site("harbourtimes.example", "The Harbour Times",
                    "<p>&copy; 2026 The Harbour Times. All rights reserved.</p>"),
    "mirror": Site("newsmirror.example", "News Mirror",
                   "<p>Stories syndicated from our partner newspapers.</p>"),
    "wiki": Site("greenwiki.example", "Green Wiki",
                 f'<p>Text is available under <a rel="license" href="{CC}/by-sa/4.0/">'
                 "CC BY-SA 4.0</a>; additional terms may apply.</p>"),
    "learn": Site("openlearn-notes.example", "Open Learning Notes",
                  "<p>Open Learning Notes, a volunteer project.</p>",
                  head=f'<link rel="license" href="{CC}/by/4.0/">'),
    "makers": Site("makersblog.example", "Makers' Blog",
                   f'<p><a href="{CC}/by-nc/4.0/"><img alt="Creative Commons License" '
                   'src="https://i.creativecommons.org/l/by-nc/4.0/88x31.png"></a> This work is '
                   "licensed under a Creative Commons Attribution-NonCommercial 4.0 "
                   "International License.</p>"),
    "guide": Site("cityguide.example", "City Guide", "<p>City Guide, made in the harbour.</p>"),
    "shop": Site("shop.example", "Shop", "<p>Shop Ltd.</p>"),
}

NAV = ('<nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/guides">Guides</a> | '
       '<a href="/contact">Contact</a></nav>')
ASIDE = ('<aside><h3>Popular</h3><ul><li><a href="/p/1">Ten walks along the coast</a></li>'
         '<li><a href="/p/2">Where to eat this weekend</a></li></ul></aside>')


def page(site: str, title: str, body: str, *, lang: str = "en", aside: bool = True) -> str:
    s = SITES[site]
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{escape(title)} - {escape(s.name)}</title>{s.head}</head><body>"
            f"<header><a href=\"/\">{escape(s.name)}</a></header>{NAV}<main><article>"
            f"<h1>{escape(title)}</h1>{body}</article>{ASIDE if aside else ''}</main>"
            f"<footer>{s.footer}</footer></body></html>")


def paragraphs(texts: list[str]) -> str:
    return "".join(f"<p>{escape(t)}</p>" for t in texts)


# Articles that should pass every rule. (site, path, title, paragraphs)
ARTICLES = {
    "bees": ("harbour", "news/2026/rooftop-bees", "Rooftop beehives return to the old town", [
        "Six beehives have returned to the flat roof of the old customs house, where a group of "
        "volunteers kept bees for a decade before the building was closed for repairs. The "
        "hives were moved to a farm outside town during the work and came back last week.",
        "The volunteers say that city bees do surprisingly well. Parks, gardens and the lime "
        "trees along the harbour flower one after another, so the colonies find food from "
        "early spring until late summer, and the honey tastes different every month.",
        "Visitors can watch the hives from a glass door on the top floor. The group sells its "
        "honey at the Saturday market and gives the money to a school that keeps its own small "
        "apiary behind the sports field.",
    ]),
    "night-train": ("harbour", "news/2026/night-train", "The night train to the coast is back", [
        "For the first time in twelve years, a night train leaves the capital at ten in the "
        "evening and reaches the coast before breakfast. The service runs three times a week "
        "and uses refurbished sleeping cars bought from a neighbouring country.",
        "Most of the first passengers were families and older travellers who prefer not to "
        "fly. A couchette costs about the same as a hotel room, and the train stops at four "
        "towns along the way, which also gives students a cheap way home for the weekend.",
        "The operator will decide in the autumn whether to add a daily service. Its managers "
        "say that bookings for the summer months are already higher than they expected when "
        "they planned the route.",
    ]),
    "repair-cafe": ("harbour", "news/2026/repair-cafe", "Repair cafe fixes two hundred items", [
        "The repair cafe in the parish hall celebrated its second birthday with a simple "
        "figure: two hundred items fixed since it opened. Toasters, lamps, bicycles, jeans "
        "and one very old sewing machine have left the hall working again.",
        "Anyone can bring a broken object on the first Sunday of the month. Volunteers with "
        "soldering irons, sewing kits and spanners sit at long tables and repair the item "
        "together with its owner, who learns how to do it next time.",
        "The organisers keep a notebook of every repair. They say that most failures are "
        "small, such as a loose wire or a worn belt, and that a surprising number of things "
        "are thrown away only because nobody knows how to open them.",
    ]),
    "tide-pools": ("learn", "biology/tide-pool-survey", "Counting life in the tide pools", [
        "Every spring, pupils from three schools spend a morning counting animals in the "
        "rock pools below the lighthouse. They work in pairs, lay a square frame on the rock "
        "and write down every crab, snail, anemone and starfish inside it.",
        "The counts go into a shared table that now covers nine years. Teachers use it to "
        "show how the number of some species changes after a warm winter, and how a storm can "
        "empty a pool that was full of life the year before.",
        "The survey has one strict rule: nothing is taken home. Animals are lifted gently, "
        "counted and put back where they were found, and the children leave the shore before "
        "the tide turns.",
    ]),
    "tool-library": ("harbour", "news/2026/tool-library",
        "The library now lends drills and ladders", [
        "Members of the central library can now borrow more than books. A room in the "
        "basement holds drills, ladders, a sewing machine, a carpet cleaner and a box of "
        "camping gear, all of which can be taken home for a week.",
        "The idea came from a survey that asked residents which tools they used less than "
        "once a year. Most households owned a drill that they had switched on only a few "
        "times, and many said they would rather borrow one than buy another.",
        "Staff check every tool when it comes back and keep a list of spare parts. The library "
        "plans to add gardening tools in the spring and to run short workshops on using them "
        "safely.",
    ]),
    "solar-coop": ("wiki", "wiki/School_solar_cooperative", "School solar cooperative", [
        "The school solar cooperative is a group of parents, teachers and neighbours who "
        "financed solar panels on the roof of the primary school. Members bought shares of "
        "one hundred euros each, and the school pays for the electricity it uses.",
        "The panels were installed over two summer holidays. On a bright day they produce "
        "more power than the school needs, and the surplus is sold to the grid, which pays "
        "a small yearly return to the members of the cooperative.",
        "Pupils follow the production on a screen in the entrance hall. Science classes use "
        "the figures to compare seasons, and the cooperative hopes to repeat the model on the "
        "roof of the sports centre next year.",
    ]),
    "chess": ("harbour", "news/2026/laundromat-chess", "Chess club meets in a laundromat", [
        "On Tuesday evenings the laundromat on Mill Street turns into a chess club. Boards "
        "sit on the folding tables, and players move their pieces while their washing turns "
        "in the machines behind them.",
        "The club was started by the owner, who noticed that customers spent their waiting "
        "time staring at their phones. He left a board on the counter one evening, and by the "
        "end of the month a dozen regulars were coming every week.",
        "Beginners are welcome and nobody is asked to bring laundry. A retired teacher gives "
        "a short lesson at seven, and the evening ends with a quick tournament that rarely "
        "finishes before the last dryer stops.",
    ]),
    "sourdough": ("learn", "cooking/sourdough-starter", "How to keep a sourdough starter alive", [
        "A sourdough starter is a mixture of flour and water in which wild yeast and bacteria "
        "grow. It needs regular feeding, a clean jar and a little patience, but it can live "
        "for many years if you treat it well.",
        "Feed the starter once a day when it stands on the counter, or once a week when it "
        "lives in the fridge. Throw away most of it, then add fresh flour and water in equal "
        "weights, stir well and leave the lid loose so that gas can escape.",
        "A healthy starter smells sour and pleasant and doubles in size a few hours after a "
        "feed. If a grey liquid forms on top, the starter is simply hungry, so pour the liquid "
        "away and feed it a little more often.",
    ]),
    "lighthouse": ("harbour", "news/2026/lighthouse-lens",
        "Lighthouse lens shines again after restoration", [
        "The great glass lens of the north lighthouse is turning again after two years of "
        "careful restoration. Specialists cleaned each of its prisms by hand and replaced the "
        "brass frames that had been damaged by salt air.",
        "The lens was made more than a century ago and weighs nearly four tonnes. It floats "
        "on a bath of liquid so that a small motor can turn it, and the restorers found that "
        "the original mechanism needed only new bearings.",
        "The tower will open to visitors on summer weekends. Guides will explain how keepers "
        "once wound the clockwork every few hours through the night, long before the light "
        "was controlled from an office on the mainland.",
    ]),
    "river-cleanup": ("harbour", "news/2026/river-cleanup",
        "River cleanup pulls out a rusty safe", [
        "Forty volunteers spent Saturday morning pulling rubbish out of the river below the "
        "old mill. They filled two skips with bottles, tyres and shopping trolleys, and one "
        "group found a small rusty safe stuck in the mud.",
        "The safe was empty, to the disappointment of the children who had gathered around "
        "it. The police think that it was stolen many years ago and thrown into the water "
        "after the thieves had opened it.",
        "The cleanup takes place twice a year. The organisers say that the amount of "
        "rubbish has fallen since the town put new bins along the path, and that otters have "
        "been seen on the river again for the first time in years.",
    ]),
    "perseids": ("learn", "astronomy/perseids", "Watching the Perseids away from city lights", [
        "The Perseid meteor shower peaks every year in the middle of August, when the Earth "
        "passes through dust left behind by a comet. On a clear night far from street lights, "
        "you can see dozens of meteors in an hour.",
        "You do not need a telescope or binoculars. Find a dark place with a wide view of the "
        "sky, lie on a blanket and give your eyes twenty minutes to adjust. Looking at a "
        "phone screen resets that adjustment, so keep it in your pocket.",
        "The best hours are after midnight, when your side of the planet faces the direction "
        "in which the Earth is moving. Bring warm clothes, because even summer nights grow "
        "cold when you lie still for a long time.",
    ]),
    "street-trees": ("wiki", "wiki/Street_trees_and_heat", "Street trees and summer heat", [
        "Street trees lower the temperature of a city in two ways. Their leaves shade roads "
        "and walls that would otherwise store the heat of the sun, and the water that "
        "evaporates from the leaves cools the air around them.",
        "Measurements in several cities show that a street lined with large trees can be "
        "several degrees cooler in the afternoon than a similar street without them. The "
        "effect is strongest where the crowns meet above the road and form a closed roof.",
        "Young trees need years before they give much shade. Planners therefore protect "
        "mature trees during building work, water new trees through their first summers and "
        "choose species that cope with drought and salt from winter roads.",
    ]),
    "fire-brigade": ("harbour", "news/2026/fire-brigade", "How the volunteer fire brigade trains", [
        "The village fire brigade has no full-time staff. Its thirty members are farmers, "
        "teachers, mechanics and shop owners who carry a pager and leave whatever they are "
        "doing when it sounds.",
        "They train every Wednesday evening behind the station. One week they practise with "
        "breathing equipment in a smoke-filled container, the next they cut open an old car "
        "to learn how to free a driver trapped after an accident.",
        "The brigade is looking for new members, especially people who work in the village "
        "during the day. The chief says that the hardest part of the job is not the fire but "
        "the sudden change from an ordinary afternoon to an emergency.",
    ]),
    "valve-radio": ("makers", "2026/01/valve-radio", "Bringing a 1950s valve radio back to life", [
        "The radio came from a house clearance with a cracked cabinet and a smell of burnt "
        "dust. Before switching on a set of this age, replace the old paper capacitors, "
        "because they leak with time and can destroy the transformer.",
        "I tested each valve in a friend's tester and found only one that was weak. The dial "
        "cord had snapped, so I threaded a new one around the pulleys by following a drawing "
        "from the service manual, which took most of a rainy afternoon.",
        "When the set finally warmed up, a faint station drifted in through the hiss. After "
        "aligning the tuned circuits it pulled in stations from three countries, and the warm "
        "sound of the big speaker made the weeks of work worthwhile.",
    ]),
    "bird-count": ("wiki", "wiki/Winter_bird_count", "Winter bird count", [
        "The winter bird count is a survey in which residents spend one hour counting the "
        "birds that visit their garden, balcony or local park. The results are collected "
        "online and give a picture of how common species are doing.",
        "Participants record the highest number of each species seen at the same time, not "
        "the total seen during the hour. This avoids counting the same blackbird again every "
        "time it returns to the feeder.",
        "Over the years the count has shown a steady rise in goldfinches and a fall in house "
        "sparrows. Scientists use the data together with professional surveys to decide "
        "where further research is most needed.",
    ]),
    "mountain-hut": ("guide", "outdoors/mountain-hut", "A night in a mountain hut", [
        "The hut stands at the end of a four-hour climb, on a ledge just below the glacier. "
        "It has forty beds in three rooms, a kitchen that serves one hot meal in the evening "
        "and a drying room that smells of wool socks.",
        "Guests are asked to book ahead and to bring a sleeping bag liner. Water is scarce, "
        "so there are no showers, and everything you carry up must be carried down again, "
        "including your rubbish.",
        "Most climbers go to bed soon after dinner because the alarm rings before dawn. Those "
        "who stay up for a few minutes are rewarded with a sky full of stars and the silence "
        "of the mountains at night.",
    ]),
    "bus-network": ("harbour", "news/2026/bus-network", "The new bus network starts on Monday", [
        "From Monday the town's buses will follow a new map. Instead of eleven winding routes "
        "that each ran every half hour, there will be five straight lines with a bus every "
        "ten minutes during the day.",
        "Planners say the change means a short walk for some passengers but much shorter "
        "waits for almost everyone. Every line now stops at the station, and the last buses "
        "leave the centre an hour later than before.",
        "Printed timetables are available at the library and the town hall. Drivers will "
        "hand out maps during the first week, and staff at the station will help passengers "
        "who are unsure which line to take.",
    ]),
    "orchard": ("makers", "2026/02/grafting-workshop", "What I learned at a grafting workshop", [
        "The heritage orchard outside the village keeps more than sixty old apple varieties, "
        "many of which are no longer sold in shops. Every February its volunteers teach "
        "visitors how to graft them onto young rootstocks.",
        "Grafting is simpler than it looks. You cut a twig from the tree you want to copy, "
        "shape its end into a long wedge, and fit it into a matching cut in the rootstock so "
        "that the green layers under the bark touch.",
        "I went home with three little trees wrapped in tape. If the grafts take, they will "
        "bear fruit in four or five years, and one of them is a variety that was first "
        "described in our valley two hundred years ago.",
    ]),
    "community-radio": ("harbour", "news/2026/community-radio",
        "Community radio station turns thirty", [
        "The community radio station that broadcasts from a room above the bakery has turned "
        "thirty. It began as a weekend experiment by two students and now fills the airwaves "
        "every day with music, local news and phone-in shows.",
        "All presenters are volunteers. Among them are a fisherman who plays sea shanties, a "
        "group of teenagers who review video games and a retired nurse who reads the death "
        "notices and birthday wishes every morning.",
        "To celebrate, the station will broadcast live from the harbour for a whole day. "
        "Listeners are invited to bring their own records and tell the story behind them on "
        "air.",
    ]),
    "rain-tank": ("learn", "home/rainwater-tank", "How to size a rainwater tank", [
        "A rainwater tank should be large enough to store the water your roof collects in a "
        "wet month, but not so large that it sits half empty all year. Start by measuring the "
        "area of the roof that drains into the gutter you want to use.",
        "Multiply that area by the typical monthly rainfall in your region and take away a "
        "fifth for losses from evaporation and overflow. The result tells you roughly how "
        "much water you can expect to collect in a month.",
        "Then estimate how much water you need for the garden, the toilet or the washing "
        "machine. Choose the smaller of the two figures, add a safety margin, and fit a "
        "filter so that leaves do not end up in the tank.",
    ]),
    "language-cafe": ("guide", "events/language-cafe",
        "Language exchange evenings at the corner cafe", [
        "Every Thursday evening the corner cafe near the university fills with people who "
        "want to practise a language. Tables carry small flags, and anyone can sit down and "
        "join a conversation in the language they are learning.",
        "The rules are simple. Speak slowly, correct each other kindly, and switch languages "
        "after half an hour so that everybody gets a turn to learn and a turn to help.",
        "Regulars say that the evenings helped them more than years of grammar lessons. Some "
        "have found friends for life at the tables, and at least one couple met over a "
        "difficult conversation about the weather.",
    ]),
    "archive": ("harbour", "news/2026/photo-archive", "Town archive puts old photographs online", [
        "The town archive has scanned more than eight thousand photographs of the harbour, "
        "the shipyard and the streets around them. The oldest were taken on glass plates "
        "before the first motor cars arrived.",
        "Volunteers spent two winters cleaning the plates and negatives and writing down what "
        "each image shows. Where they could not identify a place or a person, they left a "
        "question that visitors to the website can answer.",
        "The archive has already received hundreds of replies. One woman recognised her "
        "grandmother on a picture of the fish market, and a former shipyard worker named "
        "every man in a photograph of a launch.",
    ]),
    "glacier": ("wiki", "wiki/Measuring_glacier_retreat", "Measuring glacier retreat", [
        "Glaciologists measure the retreat of a glacier by recording the position of its "
        "front at the end of each summer. Many measurements still use painted marks on rocks "
        "and a tape measure, alongside satellite images and drones.",
        "The front alone does not tell the whole story. A glacier can lose much of its "
        "thickness before its end moves, so researchers also drill stakes into the ice and "
        "measure how much of each stake is exposed after the melting season.",
        "Long records are the most valuable. Some glaciers have been measured every year for "
        "more than a century, and these series show clearly how the pace of melting has "
        "changed over the last decades.",
    ]),
    "pottery": ("guide", "classes/pottery-beginners", "A first evening at the pottery studio", [
        "The studio in the old dairy offers a beginners' class every Monday. Nobody expects "
        "you to make a perfect bowl on the first evening, and the teacher says that most "
        "students spend the first hour learning how to centre the clay.",
        "Centring means pressing the spinning lump into a smooth, balanced shape in the middle "
        "of the wheel. If the clay wobbles, everything you build on it will wobble too, so it "
        "is worth the patience.",
        "After six weeks the class glazes its work, and the pieces are fired in the kiln over "
        "a weekend. Students take home a few mugs and bowls, usually a little crooked and "
        "always proudly used.",
    ]),
    "benchmarks": ("learn", "ai/benchmark-contamination", "What benchmark contamination means", [
        "Language models are often compared on public benchmarks, such as collections of "
        "school maths problems or small programming exercises. A score only means something "
        "if the model has not seen the test questions during training.",
        "Because training data is gathered from the open web, copies of benchmark questions "
        "can slip in through forums, homework sites and code repositories. Researchers call "
        "this contamination, and it can make a model look far better than it is.",
        "Careful data pipelines therefore search their training text for long word sequences "
        "that also appear in the test sets, and remove or cut out the matching passages "
        "before training begins.",
    ]),
}

# Pages whose copies differ in small edits (dedup_minhash).
NEAR_COPIES = [
    # (site, path, article, old text, new text)
    ("mirror", "syndicated/repair-cafe", "repair-cafe",
     "one very old sewing machine have left the hall working again.",
     "one very old sewing machine have left the hall working again, the organisers said."),
    ("mirror", "syndicated/lighthouse", "lighthouse",
     "weighs nearly four tonnes", "weighs almost five tonnes"),
    ("guide", "news/mountain-hut-reprint", "mountain-hut",
     "the silence of the mountains at night.",
     "the silence of the mountains at night. Beds can be booked on the hut's website."),
]
# Pages copied word for word under another URL (dedup_exact).
EXACT_COPIES = [
    ("mirror", "syndicated/rooftop-bees", "bees"),
    ("harbour", "amp/news/2026/rooftop-bees", "bees"),
    ("guide", "reading/night-train", "night-train"),
]

OTHER_LANGUAGES = [
    ("harbour", "de/stadtbibliothek", "de",
     "Die Stadtbibliothek verlängert ihre Öffnungszeiten", [
        "Ab dem kommenden Montag ist die Stadtbibliothek bis neun Uhr abends geöffnet. Viele "
        "Leserinnen und Leser hatten sich das seit Jahren gewünscht, vor allem Studierende, "
        "die nach ihren Vorlesungen in Ruhe lernen möchten.",
        "Im Lesesaal stehen neue Tische mit Lampen und Steckdosen bereit. Samstags bieten die "
        "Bibliothekarinnen außerdem Vorlesestunden für Kinder und kleine Kurse zur Suche im "
        "Katalog an.",
    ]),
    ("guide", "fr/marche-couvert", "fr", "Le marché couvert rouvre ses portes", [
        "Après deux ans de travaux, le marché couvert du centre-ville a rouvert samedi matin. "
        "Les habitants ont retrouvé leurs commerçants habituels sous une charpente rénovée, "
        "plus lumineuse et mieux protégée du froid.",
        "La mairie a réservé une dizaine d'emplacements aux producteurs de la région, qui "
        "vendent fromages, légumes de saison et pain cuit au feu de bois pendant toute la "
        "matinée.",
    ]),
    ("learn", "es/huerto-escolar", "es", "Un huerto escolar que alimenta al barrio", [
        "Los alumnos de la escuela del barrio cultivan tomates, lechugas y hierbas aromáticas "
        "en un terreno que antes era un aparcamiento. Cada clase se encarga de un bancal y "
        "lleva un diario de lo que crece.",
        "Las verduras se usan en el comedor escolar y lo que sobra se reparte entre las "
        "familias. Los profesores dicen que los niños ahora prueban alimentos que antes se "
        "negaban a comer.",
    ]),
    ("wiki", "it/Faro_del_porto", "it", "Il faro del porto", [
        "Il faro del porto fu costruito alla fine dell'Ottocento per guidare le navi tra gli "
        "scogli all'ingresso della baia. La torre, alta trenta metri, è dipinta a strisce "
        "bianche e rosse ed è visibile da molto lontano.",
        "Oggi la luce è automatica e il guardiano non vive più nella casa accanto alla torre. "
        "Durante l'estate i volontari accompagnano i visitatori fino alla lanterna e "
        "raccontano la storia dei naufragi della zona.",
    ]),
]


def article_html(key: str, replace: tuple[str, str] | None = None) -> str:
    site, _, title, texts = ARTICLES[key]
    if replace:
        old, new = replace
        joined = "\n".join(texts)
        if old not in joined:
            raise ValueError(f"{key}: {old!r} is not in the article")
        texts = joined.replace(old, new).split("\n")
    return page(site, title, paragraphs(texts))


def low_quality_pages() -> list[tuple[str, str, str]]:
    """(site, path, html) of pages that the quality rules should reject."""
    topics = ["Walking trails around the harbour", "Timetables for the island ferry",
              "Opening hours of the town museum", "Parking near the old market",
              "Campsites along the northern coast", "Bicycle hire at the railway station",
              "Tide tables for the summer months", "Restaurants with a view of the sea",
              "Guided tours of the lighthouse", "Swimming pools and public beaches",
              "Concerts in the park this summer", "Taxi companies in the town centre"]
    links = "".join(f'<li><a href="https://partner{i}.example/">{topic}</a></li>'
                    for i, topic in enumerate(topics))
    cities = ["the coast", "the islands", "the mountains", "the capital", "the lakes",
              "the old town", "the south", "the north", "the border", "the harbour"]
    spam = paragraphs([f"Cheap flights to {city}: book cheap flights to {city} today, cheap "
                       f"flights and cheap hotels." for city in cities])
    placeholder = paragraphs([
        "Welcome to our new theme. This demo page shows how a blog post looks with the "
        "default fonts, colours and spacing, so you can see the layout before you add your "
        "own writing to the site.",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
        "incididunt ut labore et dolore magna aliqua.",
        "Replace this text with your first article. You can change the header image, the "
        "menu and the sidebar widgets in the settings, and the theme will adapt the layout "
        "to phones and tablets automatically.",
        "Every post can have a featured image, a short summary for the front page and a list "
        "of tags. Readers can leave comments below each post, and you decide in the "
        "settings whether they appear at once or wait for your approval.",
    ])
    prices = "".join(f"<tr><td>SKU-{4400 + i}</td><td>{20 + i}x{10 + i} cm</td>"
                     f"<td>${9 + i}.99</td><td>{i * 3} in stock</td></tr>" for i in range(30))
    css = paragraphs([
        "For years, putting a box in the middle of a page was a small puzzle that every web "
        "designer solved in a different way. Modern browsers have made it simple, and the "
        "same few lines now work for a button, an image or a whole dialog.",
        "Paste these rules into your stylesheet and give the outer element the class name "
        "used below. The inner paragraph keeps a comfortable line length on wide screens:",
    ]) + ("<pre><code>.box { display: flex; justify-content: center; align-items: center; }\n"
          ".box > p { margin: 0 auto; max-width: 40em; }</code></pre>") + paragraphs([
        "It works in every current browser, and the box stays centred when the window is "
        "resized or when the text inside it grows.",
    ])
    packing = paragraphs([
        "A weekend in the hills does not need much, but forgetting one small thing can spoil "
        "it. This is the list we print and tick off the evening before we leave. Pack the "
        "heavy things close to your back and keep the rain jacket on top.",
    ]) + "<ul>" + "".join(f"<li>{item}</li>" for item in [
        "Rain jacket", "Warm hat and gloves", "Spare socks", "Water bottle", "Map and compass",
        "Head torch", "First aid kit", "Sun cream", "Lunch and snacks", "Phone and charger",
        "Pocket knife", "Bin bag for rubbish", "Sleeping bag liner", "Cash for the hut"]) \
        + "</ul>" + paragraphs([
            "Check the weather forecast on the morning you leave. If it changes, it is "
            "always better to turn back early than to be caught on an open ridge. Enjoy the "
            "walk!"])
    cookie = ("<p>We value your privacy. We and our partners use cookies to store and access "
              "information on your device.</p><p>Accept all. Reject all. Manage options.</p>")
    return [
        ("guide", "links", page("guide", "Useful links", f"<ul>{links}</ul>", aside=False)),
        ("shop", "cheap-flights", page("shop", "Cheap flights to the coast", spam)),
        ("makers", "theme-demo", page("makers", "Theme demo post", placeholder)),
        ("shop", "frames/price-list", page(
            "shop", "Picture frames price list",
            f"<table><tr><th>Item</th><th>Size</th><th>Price</th><th>Stock</th></tr>{prices}"
            "</table>", aside=False)),
        ("makers", "snippets/centre-a-box", page("makers", "Centre a box with CSS", css)),
        ("guide", "outdoors/packing-list", page("guide", "Packing list for a weekend hike",
                                                packing)),
        ("shop", "consent", page("shop", "Before you continue", cookie, aside=False)),
        ("guide", "events/coming-soon", page(
            "guide", "Coming soon", "<p>Our summer events calendar will be published here in "
            "May.</p>")),
    ]


def no_text_pages() -> list[tuple[str, str, str]]:
    """Pages without main text (extract: no_content)."""
    gallery = "".join(f'<img src="/photos/{i}.jpg" alt="">' for i in range(12))
    return [
        ("guide", "photos/harbour-festival", '<!DOCTYPE html><html><head><title>Harbour '
         f'festival photos</title></head><body><div class="gallery">{gallery}</div></body>'
         "</html>"),
        ("shop", "app", '<!DOCTYPE html><html><head><title>Shop</title>'
         '<script src="/static/app.8c1f.js"></script></head><body><div id="root"></div>'
         "</body></html>"),
    ]


def benchmark_pages() -> list[tuple[str, str, str]]:
    """Pages quoting benchmark items verbatim (decontam), from the bundled copies."""
    gsm8k = json.loads((BENCH / "gsm8k" / "test.jsonl").open(encoding="utf-8").readline())
    humaneval = json.loads((BENCH / "humaneval" / "HumanEval.jsonl").open(
        encoding="utf-8").readline())
    # A homework forum writes the answer without GSM8K's <<calculator>> notes.
    answer = "".join(part.split(">>")[-1] for part in gsm8k["answer"].split("<<"))
    homework = paragraphs([
        "My daughter brought this problem home from school and we argued about it for half "
        "an hour. I think the trick is to subtract the eggs she uses before you multiply, but "
        "her teacher marked the first answer wrong. Can someone explain it step by step?",
        gsm8k["question"],
        "Here is the worked answer from the back of the book, which finally made it click "
        "for both of us:",
    ]) + "".join(f"<p>{escape(line)}</p>" for line in answer.split("\n")) + paragraphs([
        "Thanks to everyone who replied. We now draw a little picture of the eggs before we "
        "start, and the rest of the homework went much faster.",
    ])
    practice = paragraphs([
        "When I prepare for a coding interview I start every morning with one small "
        "exercise. It should take less than ten minutes, and the point is to warm up rather "
        "than to learn something new.",
        "This is the one I used today. Read the docstring carefully, write the function, and "
        "only then run the examples to see whether you got it right:",
    ]) + f"<pre><code>{escape(humaneval['prompt'])}</code></pre>" + paragraphs([
        "A simple solution compares every pair of numbers, which is fine for short lists. "
        "If you sort the numbers first, you only need to compare neighbours, and that is the "
        "version interviewers usually hope to hear about.",
        "Tomorrow I will try a string exercise, and I will write about how long it took me.",
    ])
    return [
        ("learn", "forum/homework-help-duck-eggs", page(
            "learn", "Homework help: how many eggs does Janet sell?", homework)),
        ("makers", "2026/02/warm-up-exercises", page(
            "makers", "My morning warm-up exercise for coding interviews", practice)),
    ]


OTHER_PAGES = [
    # (site, path, status, content type, body, extra headers): read rejects these
    ("harbour", "news/2019/old-story", "404 Not Found", "text/html; charset=utf-8",
     b"<html><body><h1>Page not found</h1></body></html>", []),
    ("guide", "old-guide", "301 Moved Permanently", "text/html; charset=utf-8", b"",
     [("Location", "https://cityguide.example/outdoors/mountain-hut")]),
    ("learn", "files/tide-pool-worksheet.pdf", "200 OK", "application/pdf",
     b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", []),
    ("harbour", "img/bees.jpg", "200 OK", "image/jpeg",
     b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9", []),
]


def responses() -> list[tuple[str, str, str, bytes, list]]:
    """(url, status, content type, body, extra headers) in crawl order."""
    html = "text/html; charset=utf-8"
    pages = [(site, path, article_html(key)) for key, (site, path, *_) in ARTICLES.items()]
    pages += [(site, path, article_html(key)) for site, path, key in EXACT_COPIES]
    pages += [(site, path, article_html(key, (old, new)))
              for site, path, key, old, new in NEAR_COPIES]
    pages += [(site, path, page(site, title, paragraphs(texts), lang=lang))
              for site, path, lang, title, texts in OTHER_LANGUAGES]
    pages += low_quality_pages() + no_text_pages() + benchmark_pages()
    out = [(f"https://{SITES[site].host}/{path}", "200 OK", html, markup.encode("utf-8"), [])
           for site, path, markup in pages]
    out += [(f"https://{SITES[site].host}/{path}", status, kind, body, headers)
            for site, path, status, kind, body, headers in OTHER_PAGES]
    # A crawl interleaves sites and topics: order by a hash of the URL, which is stable.
    return sorted(out, key=lambda response: hashlib.sha1(response[0].encode()).digest())


def record_id(url: str, kind: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(ID_NAMESPACE, f'{kind} {url}')}>"


def main(out: Path = HERE / "data" / FILENAME) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        writer = WARCWriter(handle, gzip=True, warc_version="1.0")
        info = (b"software: examples/make_common_crawl_sample.py\r\n"
                b"format: WARC File Format 1.0\r\n"
                b"description: a tiny crawl shaped like Common Crawl, for "
                b"examples/common_crawl.yaml\r\n")
        writer.write_record(writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(info), warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Record-ID": record_id(FILENAME, "warcinfo"),
                               "WARC-Date": DATE, "WARC-Filename": FILENAME}))
        for url, status, content_type, body, headers in responses():
            parts = urlsplit(url)
            writer.write_record(writer.create_warc_record(
                url, "request", payload=io.BytesIO(b""),
                http_headers=StatusAndHeaders(f"GET {parts.path} HTTP/1.1",
                                              [("Host", parts.netloc)], is_http_request=True),
                warc_headers_dict={"WARC-Record-ID": record_id(url, "request"),
                                   "WARC-Date": DATE}))
            http = StatusAndHeaders(status, [("Content-Type", content_type)] + headers,
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http,
                warc_headers_dict={"WARC-Record-ID": record_id(url, "response"),
                                   "WARC-Date": DATE}))
            writer.write_record(writer.create_warc_record(
                url, "metadata", payload=io.BytesIO(b"fetchTimeMs: 140\r\n"),
                warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Record-ID": record_id(url, "metadata"),
                                   "WARC-Date": DATE}))
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
