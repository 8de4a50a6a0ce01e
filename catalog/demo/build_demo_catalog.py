"""Build tokfeed's demo catalog: demo_catalog.json, next to this file.

The demo catalog is content written for this project (not real TikTok data) so
that tokfeed runs on machines without the Kaggle "TikTok Trending 2020" file.
It uses the same JSON layout as that file (a top-level "collector" list of video
records), so the same importer reads both. Every record also carries a
"demoTopic" key (the topic slug it was written for), which tests use as ground
truth, and every creator's bio starts with "[demo] ".

300 videos: 12 topics x 25 videos, 60 creators (5 per topic, mostly posting in
their own topic). Captions come from per-topic phrase templates; a few are empty
and three are not in English, like the real data. Media URLs are empty strings.

Standard library only and deterministic (random.Random(2026)): running it twice
gives byte-identical output. The output is committed; re-run after editing:

    python catalog/demo/build_demo_catalog.py
"""

import json
import random
import re
from pathlib import Path

OUTPUT = Path(__file__).with_name("demo_catalog.json")
NOTE = "Demo content written for tokfeed; not real TikTok data."
SEED = 2026
VIDEOS_PER_TOPIC = 25
EMPTY_CAPTIONS = 6
CROSS_TOPIC_RATE = 0.08  # share of a topic's videos posted by another topic's creator
ORIGINAL_SOUND_RATE = 0.5
YEAR_START, YEAR_END = 1767225600, 1798761600  # 2026-01-01 .. 2027-01-01 UTC
GENERIC_TAGS = ["fyp", "foryou", "foryoupage"]

# Per topic: creators (handle, nickname, bio), hashtags, emojis, fictional
# tracks (name, artist), slot fillers and caption templates. In a template,
# {a}/{a2} are two different fillers from "a" (likewise b, c) and {n} is a number.
TOPICS = {
    "fitness": dict(
        creators=[("liftwithmara", "Mara Lifts", "strength coach | 5am club"),
                  ("coachdeven.fit", "Coach Deven", "form checks and honest programming"),
                  ("squatsandsunrise", "Ines | strength", "powerlifting on a budget"),
                  ("kettlebellkai", "Kai", "kettlebells, mobility, no excuses"),
                  ("runwitholuwa", "Oluwa Runs", "couch to marathon, one run at a time")],
        tags="fitness gymtok workout legday homeworkout strengthtraining fitnessmotivation gains",
        emojis="💪 🏋️ 🔥 😮‍💨", n=[3, 4, 5, 8, 10, 12, 15, 20, 30, 45],
        music=[("Heavy Reps", "Ironclad Beats"), ("No Days Off", "Kilo Sound"),
               ("Run It Back", "Tempo Club")],
        a=["squats", "deadlifts", "hip thrusts", "pull-ups", "kettlebell swings",
           "Bulgarian split squats", "push-ups", "bench press", "walking lunges", "planks"],
        b=["glute growth", "a stronger core", "your first pull-up", "bigger shoulders", "fat loss",
           "better posture", "a faster 5k", "grip strength"],
        lines=["{n}-minute home workout for {b}, no equipment needed",
               "Stop doing {a} like this if you want {b}", "Day {n} of training for {b} at the gym",
               "POV: leg day hits different after {n} sets of {a}",
               "The only {a} cue you need for {b}", "Push day: {a} and {a2} until failure",
               "My coach made me do {n} reps of {a} and I can't feel my legs",
               "Beginner gym tip: master {a} before chasing {b}", "Rate my {a} form, be honest",
               "Warm-up, {a}, {a2}, stretch. That's the whole workout for {b}"]),
    "cooking": dict(
        creators=[("ramen_rory", "Rory", "noodles at midnight"),
                  ("skilletsofia", "Sofia's Skillet", "one-pan dinners for busy people"),
                  ("bakedbybenji", "Benji Bakes", "bread, cake and flour everywhere"),
                  ("weeknightwren", "Wren Cooks", "30-minute meals, zero fuss"),
                  ("spicebox_anil", "Anil", "my mum's spice box and me")],
        tags="cooking recipe foodtok easyrecipe homecooking dinnerideas mealprep baking",
        emojis="🍝 🍳 🤤 🔥 🧄", n=[10, 15, 20, 25, 30, 2, 3, 5],
        music=[("Sunday Kitchen", "The Butter Sessions"), ("Simmer", "Lofi Pantry"),
               ("Pasta Night", "Giulia & the Forks")],
        a=["garlic butter pasta", "crispy chicken thighs", "miso ramen", "one-pot chili",
           "homemade focaccia", "smash burgers", "veggie stir fry", "banana bread", "shakshuka",
           "pork dumplings"],
        b=["brown butter", "fresh basil", "chili crisp", "leftover rice", "parmesan",
           "roasted garlic", "soy sauce", "smoked paprika", "lemon zest", "miso paste"],
        lines=["Easy {a} recipe ready in {n} minutes", "The secret to the best {a} is {b}",
               "Weeknight dinner: {a} with {b}", "Cooking {a} from scratch for the first time",
               "My grandma's {a} recipe, finally written down",
               "You only need {b} to make restaurant-style {a}",
               "Meal prep Sunday: {a} and {a2} for the whole week",
               "Chef tip: season your {a} with {b} before it hits the pan",
               "Testing viral {a} recipes from the internet, part {n}",
               "This {a} with {b} is the best thing I've cooked all year"]),
    "anime": dict(
        creators=[("shonen.sasha", "Sasha", "shonen enjoyer, manga first"),
                  ("mangamarrow", "Marrow", "reading manga so you don't have to"),
                  ("inkpanelsiris", "Iris", "I draw anime characters badly, then well"),
                  ("sakuga_notes", "Sakuga Notes", "animation breakdowns, frame by frame"),
                  ("isekai_ike", "Ike", "reincarnated as a TikTok account")],
        tags="anime manga otaku animeedit weeb animetok cosplay animefan",
        emojis="😭 🔥 👀 ✨ ⚔️", n=[3, 5, 7, 10, 12, 24, 30],
        music=[("Crimson Horizon (TV Size)", "Studio Kagerou"), ("Last Episode", "Neon Shrine"),
               ("Sakura Drift", "Lofi Tanuki")],
        a=["shonen anime", "isekai anime", "mecha anime", "slice-of-life anime", "sports anime",
           "magical girl anime", "dark fantasy manga", "romance manga"],
        b=["the final arc", "the training arc", "the villain's backstory", "the opening theme",
           "the tournament arc", "the manga chapter", "the sakuga fight scene",
           "the season finale"],
        lines=["Nobody talks about how good {b} of this {a} is",
               "Anime fans when {b} finally gets animated",
               "Ranking every {a} I watched this season",
               "POV: you read the manga before {b} aired",
               "Drawing my favorite {a} character in {n} minutes",
               "This {a} fight scene had no business going this hard",
               "Manga readers know exactly what's coming after {b}",
               "Cosplay check: my {a} protagonist look",
               "If you liked this {a}, watch this underrated one next",
               "Episode {n} reaction: {b} broke me",
               "Subbed or dubbed for {a}? Anime fans, fight in the comments"]),
    "gaming": dict(
        creators=[("pixelpriya", "Priya", "cozy games and chaotic streams"),
                  ("respawnruben", "Ruben", "I die a lot, professionally"),
                  ("speedrunsol", "Sol", "any% or nothing"),
                  ("lootgoblin_lou", "Lou", "if it drops, I pick it up"),
                  ("controllercass", "Cass", "console gamer, setup nerd")],
        tags="gaming gamer gamingtok videogames twitch speedrun gamingsetup pcgaming",
        emojis="🎮 😱 🕹️ 💀", n=[2, 3, 4, 5, 7, 12, 30, 50, 100],
        music=[("Press Start", "8-Bit Harbor"), ("Respawn", "Glitchwave"),
               ("Boss Theme", "Cartridge Kids")],
        a=["ranked mode", "the final boss", "this roguelike", "the battle royale",
           "my survival base", "the new open-world game", "the boss rush mode", "a horror game",
           "couch co-op"],
        b=["a wooden sword", "zero deaths", "no upgrades", "one health bar", "the starter weapon",
           "a broken controller", "my duo"],
        lines=["Beat {a} with {b} on hard mode", "When your teammate rage quits in {a}",
               "Day {n} of grinding {a} until I hit top 500", "Speedrun attempt {n}: {a} with {b}",
               "Gamers, be honest: is {a} worth it?",
               "The moment I realised {a} was possible with {b}",
               "POV: you're the last one alive in {a}",
               "Clutch 1v4 in {a} with {b}, my hands were shaking",
               "Streaming {a} tonight, come hang out in chat",
               "Gaming setup tour: what I use for {a}"]),
    "pets": dict(
        creators=[("biscuitandbeans", "Biscuit & Beans", "one corgi, one cat, zero chill"),
                  ("catladyjuno", "Juno + 3 cats", "the cats run this account"),
                  ("goldenhourgus", "Gus the golden", "professional good boy"),
                  ("tinypawstheo", "Theo", "foster kittens and puppies"),
                  ("rescue_rosa", "Rosa Rescues", "adopt, don't shop")],
        tags="pets dogsoftiktok catsoftiktok puppy cat dog petlover rescuedog",
        emojis="🥹 😂 🐾 ❤️", n=[2, 3, 4, 5, 6, 7, 10, 12],
        music=[("Happy Paws", "Sunny Ukulele"), ("Zoomies", "The Good Boys"),
               ("Whiskers", "Cozy Tapes")],
        a=["my golden retriever", "our rescue cat", "the corgi", "my senior dog", "the new kitten",
           "our husky", "my tabby cat", "the foster puppy"],
        b=["the vet", "bath time", "a squeaky toy", "a new dog bed", "a treat", "the laser pointer",
           "the mailman", "the cat tree"],
        lines=["{a} vs {b}: who wins", "{a} when I say the word walk",
               "Day {n} of teaching {a} a new trick", "POV: {a} heard {b} from across the house",
               "Why does {a} do this every time we see {b}?",
               "Adopted {a} {n} months ago and look at them now", "Rating {a}'s reaction to {b}",
               "Pet parent life: {a} stole {b} again", "Weird things {a} does, part {n}",
               "{a} got the zoomies right after {b}"]),
    "travel": dict(
        creators=[("carryon_clem", "Clem", "one bag, forty countries"),
                  ("backpackbao", "Bao", "hostels, street food, sunrise hikes"),
                  ("slowtrainsunni", "Sunni", "overland travel, no flights when possible"),
                  ("passportpilar", "Pilar", "weekend trips on a teacher's salary"),
                  ("weekendwandermo", "Mo", "city guides in 60 seconds")],
        tags="travel traveltok wanderlust solotravel travelguide backpacking traveltips vacation",
        emojis="✈️ 🌍 🧳 🌅", n=[2, 3, 4, 5, 7, 10, 14],
        music=[("Window Seat", "Passport Pop"), ("Golden Coast", "Atlas & June"),
               ("Midnight Train", "Far Lanes")],
        a=["Lisbon", "Kyoto", "the Amalfi Coast", "Mexico City", "Iceland", "Bali", "Istanbul",
           "Patagonia", "Seoul", "Marrakech"],
        b=["one carry-on", "a backpack", "a rail pass", "a tiny budget", "no hotel booked"],
        c=["the night market", "a hidden beach", "the sunrise hike", "the old town",
           "the local bakery", "the street food stalls"],
        lines=["{n} days in {a} with {b}", "Travel tip for {a}: go early and find {c}",
               "Is {a} worth the hype? Honest travel review",
               "POV: your flight to {a} lands at sunrise", "How I travelled around {a} with {b}",
               "{c} in {a} was the best thing I found this trip",
               "Solo travel diary: day {n} in {a}", "Pack with me for {n} days in {a}",
               "Hidden gems in {a} that tourists always miss",
               "Travel itinerary: {a} then {a2}, all by train"]),
    "finance": dict(
        creators=[("budgetwithbex", "Bex", "budgeting for people who hate budgets"),
                  ("indexfundian", "Ian", "boring investing, explained"),
                  ("centsiblesam", "Sam", "saving money without being miserable"),
                  ("debtfreedara", "Dara", "paid off $38k, showing you how"),
                  ("frugalfinn", "Finn", "not financial advice, just receipts")],
        tags="personalfinance moneytok budgeting investing financetips savingmoney debtfree money",
        emojis="💸 💰 📈 🧾", n=[3, 6, 12, 18, 30, 60],
        music=[("Money Moves", "Ledger"), ("Stack It Up", "Cent Collective"),
               ("Quiet Luxury", "Lofi Budget")],
        a=["an emergency fund", "index funds", "a Roth IRA", "the 50/30/20 budget",
           "a high-yield savings account", "compound interest", "a sinking fund",
           "dollar-cost averaging"],
        b=["$500", "$1,000", "$10,000", "$200 a month", "a $45k salary"],
        lines=["{a} explained in {n} seconds", "How I'd invest {b} if I was starting over",
               "Personal finance tip nobody told me about {a}",
               "Why I stopped ignoring {a} in my twenties",
               "Money mistakes I made before learning about {a}",
               "How I saved {b} in {n} months on a tight budget",
               "{a} vs {a2}: which one should you start first?",
               "Day {n} of a no-spend month, here's my budget update",
               "Your bank won't tell you this about {a}",
               "Debt-free journey update: {b} left to pay off"]),
    "dance": dict(
        creators=[("twostep_tala", "Tala", "dance teacher by day, TikTok by night"),
                  ("grooveby_gio", "Gio", "hip hop, house, whatever moves"),
                  ("popandlockleo", "Leo", "popping since 2014"),
                  ("choreo.naya", "Naya", "original choreography every Friday"),
                  ("heelsandhanna", "Hanna", "heels class and bad decisions")],
        tags="dance dancechallenge choreography dancetutorial dancer hiphop dancetrend kpopdance",
        emojis="💃 🕺 🔥 🎶", n=[2, 3, 4, 5, 10, 15, 30],
        music=[("Move Your Feet Tonight", "Kaia Blue"), ("Bounce Back", "DJ Rivermint"),
               ("Heartbeat Choreo", "Velvet Step")],
        a=["this dance trend", "the new choreo", "a hip hop routine", "the chorus choreography",
           "a k-pop dance", "the shuffle", "a salsa combo", "the footwork section"],
        b=["my mom", "my little sister", "the whole dance crew", "my dance teacher",
           "my best friend", "a stranger at the mall"],
        lines=["Learned {a} in {n} minutes, dance tutorial below",
               "Dance challenge: doing {a} with {b}", "{a} slowed down so you can learn the steps",
               "Tried {a} and {b} danced it better", "Dance tutorial for {a}, mirrored, part {n}",
               "When the beat drops and you know {a} by heart", "Dance class recap: {b} nailed {a}",
               "Original choreography, danced with {b}",
               "Practicing {a} until my legs give up, day {n}",
               "Freestyle dance session to the new beat, {b} filming"]),
    "comedy": dict(
        creators=[("skitsbyshay", "Shay", "I play every character, sorry"),
                  ("deadpan_dom", "Dom", "unserious content, serious face"),
                  ("officeskits_ola", "Ola", "corporate life, but make it a sitcom"),
                  ("momvoice_meg", "Meg", "doing my mom's voice since 1999"),
                  ("roommate_rafi", "Rafi", "skits about my roommate (he knows)")],
        tags="comedy funny skit relatable humor sketchcomedy lol jokes",
        emojis="😂 💀 😭 🤣", n=[2, 3, 4, 5, 6, 7],
        music=[("Awkward Silence", "Sitcom Strings"), ("Oops", "Kazoo Crew"),
               ("Dramatic Reveal", "Tiny Orchestra")],
        a=["my manager", "my roommate", "my mom", "the group chat", "my boyfriend", "the barista",
           "my landlord", "the new intern"],
        b=["on a Monday morning", "at a family dinner", "when the wifi goes down",
           "during a Zoom call", "at the grocery store", "after one sip of coffee"],
        lines=["POV: {a} {b}", "Skit: {a} trying to act normal {b}",
               "When {a} says 'quick question' {b}",
               "How {a} texts vs how they talk in person, a skit",
               "Me doing an impression of {a} {b}, part {n}",
               "Things {a} says that make zero sense", "If {a} was the narrator of my life",
               "Comedy sketch: {a} explains a movie plot {b}", "Nobody: ... {a} {b}:",
               "Impressions of {a}, part {n}, you asked for it"]),
    "diy": dict(
        creators=[("fixitfern", "Fern", "fixing my 1970s house one room at a time"),
                  ("reclaimedroman", "Roman", "old wood, new furniture"),
                  ("rentersredo_rue", "Rue", "renter-friendly upgrades, deposit intact"),
                  ("studfinderstan", "Stan", "retired carpenter, new to TikTok"),
                  ("paintandpatch_pia", "Pia", "paint, patch, repeat")],
        tags=("diy homeimprovement homedecor diyproject renovation upcycling renterfriendly"
              " homereno"),
        emojis="🔨 🪚 🏠 ✨", n=[20, 30, 40, 50, 75, 100, 150, 200],
        music=[("Sawdust", "Workbench Radio"), ("Fixer Upper", "Hammer & Hum"),
               ("Fresh Coat", "Weekend Project")],
        a=["my rental kitchen", "the bathroom", "a thrifted dresser", "our tiny balcony",
           "the hallway", "an old bookshelf", "the laundry room", "my bedroom wall"],
        b=["peel-and-stick tile", "a can of paint", "reclaimed wood", "a power drill", "wallpaper",
           "new cabinet hardware", "a staple gun", "drywall patch"],
        lines=["DIY makeover: {a} with {b} for under ${n}", "Before and after: {a} renovation",
               "Renter-friendly DIY hack for {a} using {b}",
               "I spent ${n} and one weekend redoing {a}",
               "Home improvement mistake: don't use {b} on {a}",
               "Turning {a} into something I actually love with {b}",
               "How to use {b} like a pro, beginner DIY", "Part {n} of renovating {a} myself",
               "Upcycling {a} with {b} and a lot of patience",
               "Home reno update: {a} is finally done"]),
    "skincare": dict(
        creators=[("glowwithgemma", "Gemma", "skincare for real skin, texture included"),
                  ("spf_sully", "Sully", "wear your sunscreen, I'll remind you"),
                  ("dewydaria", "Daria", "glass skin attempts, daily"),
                  ("serumsundays", "Tess | Serum Sundays", "one serum review every Sunday"),
                  ("barrierbeau", "Beau", "protect your skin barrier")],
        tags="skincare skincareroutine beauty glowingskin skintok acne selfcare makeup",
        emojis="✨ 🧴 💧 🌸", n=[7, 14, 21, 30, 60, 90],
        music=[("Glow Up", "Dewdrop"), ("Soft Morning", "Velour"),
               ("Self Care Sunday", "Milky Way Tapes")],
        a=["niacinamide serum", "retinol", "vitamin C serum", "a gentle cleanser",
           "hyaluronic acid", "a ceramide moisturizer", "an exfoliating toner", "azelaic acid"],
        b=["dry skin", "acne-prone skin", "dark spots", "oily skin", "sensitive skin",
           "uneven texture", "dehydrated skin"],
        lines=["My nighttime skincare routine for {b}",
               "Skincare tip: don't layer {a} with {a2} on the same night",
               "{n} days of using {a} on {b}, honest results",
               "Get ready with me: skincare and makeup for {b}",
               "Stop wasting money on {a} if you have {b}",
               "Morning skincare routine: {a}, {a2}, then SPF",
               "How I finally calmed my {b} with {a}",
               "Beauty hack: apply {a} before moisturizer for glowing skin",
               "Skincare products I'd repurchase for {b}", "Rating drugstore {a} for {b}"]),
    "science": dict(
        creators=[("orbitwithosei", "Osei", "astrophysics grad, space facts daily"),
                  ("labcoatlena", "Lena", "chemistry demos (don't try this at home)"),
                  ("stargazerselin", "Selin", "backyard astronomy and night sky photos"),
                  ("quarkquinn", "Quinn", "physics explained with snacks"),
                  ("microbemilo", "Milo", "science teacher, tiny experiments")],
        tags="science space astronomy physics sciencetok astrophysics universe stem",
        emojis="🔭 🌌 🪐 🧪 🚀", n=[30, 45, 60, 90, 2, 5, 10],
        music=[("Orbit", "Cosmic Choir"), ("Event Horizon", "Parallax"),
               ("Stardust Lullaby", "Lofi Lab")],
        a=["black holes", "the James Webb telescope", "Saturn's rings", "neutron stars", "the Moon",
           "Mars", "the Big Bang", "solar eclipses", "exoplanets", "the Andromeda galaxy",
           "dark matter"],
        b=["liquid nitrogen", "dry ice", "a balloon", "a marshmallow", "a magnet",
           "a homemade telescope"],
        lines=["{a}, explained in {n} seconds", "Space fact about {a} that sounds fake but is true",
               "Science experiment with {b} you can do at home",
               "Astronomers just found something new about {a}",
               "Why scientists can't stop studying {a}", "Physics teacher explains {a} using {b}",
               "Day {n} of explaining the universe: {a}", "The scale of {a} will break your brain",
               "Lab demo: what happens to {b} in a vacuum chamber",
               "Night sky tonight: how to spot {a} with {b}"]),
}

# A couple of non-English captions, like the real data (replace one video each).
NON_ENGLISH = {
    "cooking": "Arroz con pollo en una sola olla, listo en 30 minutos 🍗 #receta #cocina #fyp",
    "anime": "この戦闘シーンの作画、神すぎる…最終回まで泣いた 😭 #アニメ #anime #manga",
    "dance": "Aprendi a coreografia nova em uma hora 💃 #dança #dance #choreography",
}


def make_caption(rng, topic):
    """One caption for `topic`: a filled template, maybe an emoji, 2-4 hashtags."""
    spec = TOPICS[topic]
    line = rng.choice(spec["lines"])
    fill = {"n": rng.choice(spec["n"])}
    for slot in ("a", "b", "c"):
        if slot in spec:
            fill[slot], fill[slot + "2"] = rng.sample(spec[slot], 2)
    text = line.format(**fill)
    text = text[0].upper() + text[1:]
    if rng.random() < 0.6:
        text += " " + rng.choice(spec["emojis"].split())
    tags = rng.sample(spec["tags"].split(), rng.randint(2, 4))
    if rng.random() < 0.3:
        tags.insert(rng.randint(0, len(tags)), rng.choice(GENERIC_TAGS))
    return text + " " + " ".join("#" + t for t in tags)


def make_creators(rng):
    """Creators keyed by handle, in topic order, with long-tailed follower counts."""
    creators = {}
    next_id = 9100000000000000001
    for topic, spec in TOPICS.items():
        for handle, nick, bio in spec["creators"]:
            assert handle not in creators and handle == handle.lower(), handle
            fans = int(rng.lognormvariate(11.5, 1.4))
            creators[handle] = dict(topic=topic, meta={
                "id": str(next_id), "name": handle, "nickName": nick,
                "verified": fans >= 1_000_000, "signature": "[demo] " + bio, "avatar": "",
                "fans": fans, "following": rng.randint(15, 1500), "heart": 0, "video": 0})
            next_id += 1
    return creators


def make_stats(rng, fans):
    """Plausible, long-tailed counts with plays >= likes >= comments."""
    plays = max(200, int(fans * rng.lognormvariate(-0.4, 1.2)))
    if plays >= 10_000:
        plays = round(plays, -2)
    likes = int(plays * rng.uniform(0.02, 0.18))
    comments = int(likes * rng.uniform(0.003, 0.04))
    shares = min(likes, int(likes * rng.lognormvariate(-3.5, 1.0)))
    return {"diggCount": likes, "shareCount": shares, "playCount": plays,
            "commentCount": comments}


def build():
    """Return the demo catalog as a dict: {"note": ..., "collector": [...]}."""
    rng = random.Random(SEED)
    creators = make_creators(rng)
    by_topic = {t: [h for h, c in creators.items() if c["topic"] == t] for t in TOPICS}
    music_ids = {}
    videos = []
    for topic, spec in TOPICS.items():
        own = by_topic[topic]
        others = [h for t, hs in by_topic.items() if t != topic for h in hs]
        # Every creator posts at least once; the rest favour the first creators.
        posters = own + rng.choices(own, weights=[5, 4, 3, 2, 1], k=VIDEOS_PER_TOPIC - len(own))
        rng.shuffle(posters)
        seen = set()
        for i, handle in enumerate(posters):
            if i >= len(own) and rng.random() < CROSS_TOPIC_RATE:
                handle = rng.choice(others)
            text = make_caption(rng, topic)
            while text in seen:
                text = make_caption(rng, topic)
            seen.add(text)
            videos.append(dict(topic=topic, handle=handle, text=text))
    for topic, text in NON_ENGLISH.items():
        rng.choice([v for v in videos if v["topic"] == topic])["text"] = text
    english = [v for v in videos if v["text"] not in NON_ENGLISH.values()]
    for v in rng.sample(english, EMPTY_CAPTIONS):
        v["text"] = ""

    records = []
    for v in videos:
        author = creators[v["handle"]]["meta"]
        if rng.random() < ORIGINAL_SOUND_RATE:
            music = ("original sound - " + author["name"], author["nickName"], True)
        else:
            music = rng.choice(TOPICS[v["topic"]]["music"]) + (False,)
        music_id = music_ids.setdefault(music, str(9200000000000000001 + len(music_ids)))
        duration = min(60, max(5, int(rng.lognormvariate(2.6, 0.5))))
        records.append({
            "id": "", "text": v["text"], "createTime": rng.randrange(YEAR_START, YEAR_END),
            "authorMeta": author,
            "musicMeta": {"musicId": music_id, "musicName": music[0], "musicAuthor": music[1],
                          "musicOriginal": music[2], "playUrl": "", "coverThumb": "",
                          "coverMedium": "", "coverLarge": ""},
            "covers": {"default": "", "origin": "", "dynamic": ""},
            "webVideoUrl": "", "videoUrl": "", "videoUrlNoWaterMark": "",
            "videoMeta": {"height": 1024, "width": 576, "duration": duration},
            **make_stats(rng, author["fans"]),
            "downloaded": False, "mentions": [], "hashtags": [], "demoTopic": v["topic"]})

    # Creator totals cover more than their demo videos (hearts and post counts).
    for c in creators.values():
        mine = [r for r in records if r["authorMeta"] is c["meta"]]
        c["meta"]["heart"] = int(sum(r["diggCount"] for r in mine) * rng.uniform(4, 15))
        c["meta"]["video"] = len(mine) + rng.randint(10, 400)

    # Oldest first; ids grow with time. Hashtag ids by first appearance.
    records.sort(key=lambda r: r["createTime"])
    tag_ids = {}
    for i, r in enumerate(records):
        r["id"] = str(9000000000000000001 + i)
        r["authorMeta"] = dict(r["authorMeta"])
        for name in re.findall(r"#(\w+)", r["text"]):
            tag_id = tag_ids.setdefault(name, str(7100001 + len(tag_ids)))
            r["hashtags"].append({"id": tag_id, "name": name, "title": "", "cover": ""})
    return {"note": NOTE, "collector": records}


def write(catalog, path=OUTPUT):
    """Valid JSON with one video record per line (diff-friendly when committed)."""
    rows = [json.dumps(r, ensure_ascii=False, separators=(",", ":"))
            for r in catalog["collector"]]
    head = '{"note":' + json.dumps(catalog["note"], ensure_ascii=False) + ',"collector":[\n'
    path.write_text(head + ",\n".join(rows) + "\n]}\n", encoding="utf-8")


if __name__ == "__main__":
    catalog = build()
    write(catalog)
    print(f"wrote {len(catalog['collector'])} videos to {OUTPUT}")
