"""Hand-written, hand-checked seed lists from which the template concepts are derived.

Everything here was written for interpgym (no third-party text). Two template families
per concept: the in-distribution (ID) family is a narrative clause inside a generic
sentence frame; the out-of-distribution (OOD) family uses a *different vocabulary*
(keywords, other tasks) inside *different frames* (headlines, tags, questions, chat
lines), so an OOD score measures transfer, not memorised templates.

Each topic has `clauses` (concept present), `hard_clauses` (the topic's words used in
another sense, concept absent: hard negatives), `keywords` (OOD positives) and
`hard_keywords` (OOD hard negatives).
"""

from __future__ import annotations

# ---- the ID frame family (narrative) -----------------------------------------------------
ID_FRAMES: tuple[str, ...] = (
    "Yesterday {c}.", "I heard that {c}.", "According to my neighbour, {c}.", "It surprised nobody that {c}.",
    "Last week {c}.", "She told me that {c}.", "Honestly, {c}.", "In the morning {c}.", "The report said {c}.",
    "We noticed that {c}.", "Apparently {c}.", "By the afternoon {c}.",
)

# ---- the OOD frame family (headlines, tags, questions, search queries) ------------------
OOD_FRAMES: tuple[str, ...] = (
    "Headline: new developments in {k} this week", "Q: what is the best way to learn about {k}?",
    "Tags: {k}, {k2}", "Forum thread - anyone else obsessed with {k}?", "Newsletter: five facts about {k}",
    "Search query: {k} near me",
)

NEUTRAL_CLAUSES: tuple[str, ...] = (
    "the bus was late again", "my cousin painted the fence blue", "the cat slept on the windowsill",
    "the library closed early", "a parcel arrived for the neighbours", "the lift in our building broke",
    "my brother moved to a new flat", "the garden gate squeaked all day", "we bought new curtains",
    "the train station was crowded", "someone left an umbrella on the bench", "the printer ran out of paper",
    "the children built a sandcastle", "my aunt knitted a scarf", "the street lights flickered",
    "the post office changed its opening hours", "a dog barked at the postman", "the kettle stopped working",
    "my friend lost her keys", "the shop sold out of envelopes",
)
NEUTRAL_KEYWORDS: tuple[str, ...] = (
    "furniture", "gardening gloves", "stamps", "umbrellas", "curtains", "bus timetables", "bicycles", "knitting",
    "stationery", "houseplants", "doorbells", "laundry", "board games", "candles", "shoelaces", "postcards",
)

TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "sports": {
        "clauses": (
            "the striker scored in the final minute", "our team won the league on goal difference",
            "the goalkeeper saved a penalty", "the marathon runners crossed the finish line",
            "the tennis final went to five sets", "the coach changed tactics at half time",
            "the referee showed a red card", "the cyclists climbed the mountain stage",
            "the swimmer broke the national record", "the rugby match ended in a draw",
            "the boxer won on points", "the fans cheered the winning goal",
            "the basketball team lost in overtime", "the sprinter false-started in the heats",
            "the cricket captain declared the innings", "the club signed a new midfielder",
            "the golfer sank a long putt", "the relay team dropped the baton",
            "the skier won the downhill race", "the hockey team scored twice on the power play",
        ),
        "hard_clauses": (
            "the queen held court in the palace", "she wore her old running shoes to the office",
            "the match in the kitchen drawer would not light", "the singer hit a high pitch",
            "he made a racket with the pots", "the baton was passed to the new manager at the bank",
            "the bat flew out of the attic", "she goaled nothing; she simply planned her week",
            "the players in the orchestra tuned up", "the score for the film was recorded in London",
        ),
        "keywords": (
            "football", "the Olympics", "tennis tournaments", "marathon training", "basketball playoffs",
            "the World Cup", "rugby tackles", "cycling races", "swimming records", "cricket scores",
            "goalkeeping drills", "boxing matches", "ski jumping", "ice hockey", "penalty shootouts", "sprint finals",
        ),
        "hard_keywords": (
            "court hearings", "cricket the insect", "tennis elbow surgery", "the boxing day sales", "matchsticks",
            "running a business", "a pitch deck", "golf course housing prices",
        ),
    },
    "cooking": {
        "clauses": (
            "he simmered the tomato sauce for an hour", "she kneaded the bread dough",
            "the chef seasoned the soup with thyme", "we roasted the vegetables in olive oil",
            "grandma baked an apple pie", "the risotto needed more stock", "they fried the onions until golden",
            "I whisked the eggs with sugar", "the curry was spiced with cumin", "the cake rose in the oven",
            "we marinated the chicken overnight", "the pasta was boiled al dente",
            "she chopped garlic for the stir fry", "the pancakes were flipped in butter",
            "he grilled the fish over charcoal", "the stew thickened slowly", "we steamed the dumplings",
            "the baker glazed the buns with honey", "I folded the cream into the mousse",
            "the recipe called for fresh basil",
        ),
        "hard_clauses": (
            "the accountant cooked the books", "the toaster was recycled at the dump",
            "the pan across the landscape took ten seconds in the film", "he was grilled by the committee",
            "she buttered up her boss", "the plot thickened in the second act",
            "the apple laptop crashed twice", "the pie chart showed falling sales",
            "they stirred up trouble at the meeting", "the stock market simmered all week",
        ),
        "keywords": (
            "sourdough baking", "knife skills", "Italian recipes", "slow cookers", "spice blends", "pastry dough",
            "vegetarian curries", "barbecue marinades", "cast iron pans", "homemade pasta", "soup stock",
            "chocolate desserts", "fermenting kimchi", "roasting vegetables", "egg dishes", "bread ovens",
        ),
        "hard_keywords": (
            "cooking the books", "pie charts", "apple computers", "stock prices", "grilling witnesses",
            "Java programming", "a recipe for disaster", "baking soda volcanoes for science class",
        ),
    },
    "weather": {
        "clauses": (
            "a thunderstorm rolled in from the west", "it snowed heavily overnight", "the fog lifted by noon",
            "the temperature dropped below freezing", "a heatwave baked the city", "heavy rain flooded the roads",
            "strong winds knocked down branches", "the sky cleared after the drizzle", "hail battered the cars",
            "the forecast promised sunshine", "a cold front swept across the country",
            "the humidity made the air sticky", "frost covered the fields", "a rainbow appeared after the shower",
            "the monsoon arrived early", "lightning struck the church tower", "the clouds hung low and grey",
            "a gale blew all night", "the drought dried up the reservoir", "sleet turned to snow by evening",
        ),
        "hard_clauses": (
            "she stole his thunder at the meeting", "he was under the weather after the party",
            "the company weathered the crisis", "their friendship cooled over the years",
            "a storm of criticism followed the speech", "he has a sunny personality",
            "the fog of war confused the generals", "the cloud server went down",
            "she made it rain money at the casino", "the atmosphere at the party was tense",
        ),
        "keywords": (
            "thunderstorms", "snowfall", "heatwaves", "rain forecasts", "hurricanes", "tornado warnings",
            "morning fog", "frost", "humidity", "monsoon season", "hailstones", "wind chill", "drizzle",
            "cold fronts", "barometric pressure", "sunny spells",
        ),
        "hard_keywords": (
            "cloud computing", "brainstorming sessions", "a storm of protest", "Weather Report the jazz band",
            "a sunny disposition", "stealing someone's thunder", "rainmaker lawyers", "snowflake schemas in databases",
        ),
    },
    "medicine": {
        "clauses": (
            "the doctor prescribed antibiotics", "the nurse took her blood pressure", "the surgeon removed his appendix",
            "the patient was given a vaccine", "the fever broke after two days", "the X-ray showed a fractured wrist",
            "the pharmacist checked the dosage", "the clinic treated a bad infection", "the ward was full of flu patients",
            "the paramedics stabilised the injured driver", "her asthma was controlled with an inhaler",
            "the cardiologist ordered an ECG", "the wound needed six stitches", "the diabetic patient checked his insulin",
            "the midwife delivered twins", "the hospital ran a cancer screening", "the GP referred him to a specialist",
            "the tablets eased her migraine", "the physiotherapist treated his knee", "the anaesthetist prepared the patient",
        ),
        "hard_clauses": (
            "the doctor of philosophy gave a lecture on Kant", "the tree surgeon cut back the oak",
            "the team needs a taste of its own medicine", "the spin doctors rewrote the statement",
            "the computer virus spread through the office", "the film was a shot in the arm for the studio",
            "the patient angler waited for a bite", "laughter is the best medicine, she joked",
            "the company diagnosed the fault in the engine", "the novel's plot was sick, in a good way",
        ),
        "keywords": (
            "vaccines", "antibiotics", "blood pressure", "heart surgery", "diabetes care", "hospital wards",
            "physiotherapy", "cancer screening", "asthma inhalers", "fever in children", "broken bones",
            "prescription drugs", "migraine relief", "emergency rooms", "insulin pumps", "nursing shifts",
        ),
        "hard_keywords": (
            "computer viruses", "tree surgery", "spin doctors", "doctoral theses", "patience as a virtue",
            "engine diagnostics", "sick skateboard tricks", "plant doctors for gardens",
        ),
    },
    "law": {
        "clauses": (
            "the judge sentenced him to three years", "the jury returned a guilty verdict",
            "the lawyer filed an appeal", "the court dismissed the lawsuit", "the witness testified under oath",
            "the contract was ruled unenforceable", "the defendant pleaded not guilty",
            "the prosecutor presented new evidence", "the solicitor drafted the will",
            "the tribunal awarded damages", "parliament passed the new statute", "the barrister cross-examined the expert",
            "the magistrate granted bail", "the police charged the suspect with fraud",
            "the supreme court overturned the ruling", "the tenant sued the landlord",
            "the attorney advised her to settle", "the judge issued an injunction",
            "the law firm won the copyright case", "the court ordered the company to pay a fine",
        ),
        "hard_clauses": (
            "the tennis court was resurfaced", "the judges of the baking contest loved the cake",
            "she laid down the law about bedtime at home", "the jury is still out on the new menu",
            "the fine weather lasted all week", "the case of apples arrived bruised",
            "he appealed to her sense of humour", "the sentence had too many commas",
            "the bar served cheap cocktails", "the brief was only two pages about the holiday",
        ),
        "keywords": (
            "criminal trials", "jury duty", "contract law", "appeals courts", "copyright lawsuits",
            "the supreme court", "legal aid", "witness testimony", "bail hearings", "tenancy disputes",
            "patent litigation", "wills and probate", "defence lawyers", "court injunctions", "fraud charges",
            "sentencing guidelines",
        ),
        "hard_keywords": (
            "basketball courts", "the laws of physics", "fine dining", "phone cases", "baking contest judges",
            "sentence diagramming", "Murphy's law", "bar snacks",
        ),
    },
    "programming": {
        "clauses": (
            "the developer fixed a null pointer bug", "the Python script parsed the CSV file",
            "the compiler threw a type error", "she refactored the class into smaller functions",
            "the unit tests passed after the patch", "he pushed the commit to the main branch",
            "the API returned a JSON response", "the loop ran past the end of the array",
            "the database query needed an index", "the program crashed with a segmentation fault",
            "the team reviewed the pull request", "the function recursed too deeply",
            "she wrote a regular expression to match emails", "the server leaked memory under load",
            "the build failed on the CI pipeline", "he declared the variable as a constant",
            "the JavaScript callback fired twice", "the code was ported from Java to Rust",
            "the hash map lookup was too slow", "the debugger stopped at the breakpoint",
        ),
        "hard_clauses": (
            "a bug crawled across the picnic blanket", "the theatre program listed the cast",
            "she broke the code of silence", "the python at the zoo swallowed a rabbit",
            "the java in his mug had gone cold", "the ruby ring sparkled in the shop window",
            "the dress code was smart casual", "the branch of the oak fell on the shed",
            "the exercise program made her sore", "he compiled a list of his favourite songs",
        ),
        "keywords": (
            "Python scripts", "compiler errors", "unit testing", "git branches", "REST APIs", "memory leaks",
            "recursion", "regular expressions", "SQL queries", "JavaScript frameworks", "code review",
            "segmentation faults", "type systems", "hash tables", "debuggers", "continuous integration",
        ),
        "hard_keywords": (
            "pythons in the wild", "Java coffee beans", "ruby jewellery", "bugs in the garden",
            "dress codes", "TV program schedules", "tree branches", "Morse code history",
        ),
    },
    "finance": {
        "clauses": (
            "the bank raised interest rates", "the shares fell sharply on Monday", "she paid off her mortgage",
            "the company reported a quarterly loss", "investors bought government bonds",
            "inflation eroded their savings", "the fund manager sold the stock", "the loan was approved",
            "the dividend was cut by half", "the central bank printed more money", "the pension fund grew",
            "he transferred money to his savings account", "the startup raised venture capital",
            "the stock exchange closed higher", "the accountant filed the tax return",
            "the currency lost value against the dollar", "the credit card bill was overdue",
            "the firm issued new shares", "the budget deficit widened", "the hedge fund shorted the bank",
        ),
        "hard_clauses": (
            "they had a picnic on the river bank", "she shared her sandwich with a friend",
            "the kitchen stock was mostly carrot", "he paid attention in class",
            "the bond between the sisters was strong", "interest in the book club faded",
            "the chess player traded bishops", "the fund-raising cake sale was fun",
            "the tax on his patience was heavy", "the savings on the trip were in time, not cash",
        ),
        "keywords": (
            "interest rates", "mortgages", "stock markets", "government bonds", "inflation", "pension funds",
            "venture capital", "tax returns", "credit cards", "currency exchange", "dividends", "hedge funds",
            "quarterly earnings", "savings accounts", "bank loans", "budget deficits",
        ),
        "hard_keywords": (
            "river banks", "family bonds", "soup stock", "sharing toys", "interest in hobbies",
            "blood banks", "trading cards for kids", "snow banks",
        ),
    },
    "music": {
        "clauses": (
            "the orchestra played a Beethoven symphony", "she practised scales on the piano",
            "the band released a new album", "the choir sang in four-part harmony",
            "the guitarist tuned his strings", "the drummer kept a steady beat", "the concert sold out in minutes",
            "the violinist performed a solo", "the composer finished the opera", "the jazz trio improvised",
            "the singer hit the high notes", "he learned to read sheet music", "the DJ mixed two tracks",
            "the brass section played too loudly", "the song topped the charts", "the conductor raised his baton",
            "the pianist played by ear", "the rapper wrote new lyrics", "the festival lineup included three bands",
            "the cellist recorded a sonata",
        ),
        "hard_clauses": (
            "the rubber band snapped", "she faced the music after the mistake", "the record was broken by a sprinter",
            "he noted the time in his diary", "the keys were left in the car", "the scales in the bathroom were wrong",
            "the rock fell from the cliff", "the metal gate rusted", "the organ donor saved three lives",
            "the pitch was waterlogged",
        ),
        "keywords": (
            "symphonies", "piano lessons", "guitar chords", "jazz improvisation", "choir rehearsals", "opera",
            "drum kits", "music festivals", "vinyl albums", "violin concertos", "songwriting", "sheet music",
            "hip hop lyrics", "conducting orchestras", "pop charts", "music theory",
        ),
        "hard_keywords": (
            "rubber bands", "bathroom scales", "world records", "organ donation", "heavy metal pollution",
            "rock climbing", "car keys", "football pitches",
        ),
    },
}

# ---- sentiment ------------------------------------------------------------------------
SENTIMENT_ASPECTS: tuple[str, ...] = (
    "the food", "the hotel room", "the film", "the staff", "the new phone", "the concert", "the book",
    "the delivery", "the hike", "the class", "the game", "the café",
)
POSITIVE_PREDICATES: tuple[str, ...] = (
    "was wonderful", "was delightful", "was excellent", "was fantastic", "was lovely", "was superb",
    "was great fun", "was a real joy", "was brilliant", "was heart-warming",
)
NEGATIVE_PREDICATES: tuple[str, ...] = (
    "was awful", "was dreadful", "was terrible", "was disappointing", "was boring", "was a waste of money",
    "was rude and slow", "was miserable", "was broken", "was painful to sit through",
)
# hard negatives: the positive words, negated
NEGATED_PREDICATES: tuple[str, ...] = (
    "was not wonderful at all", "was far from delightful", "was never excellent", "was hardly fantastic",
    "was anything but lovely", "was not superb in the slightest",
)
SENTIMENT_OOD_THINGS: tuple[str, ...] = (
    "this blender", "the weekend trip", "that restaurant", "the sequel", "my new shoes", "the museum tour",
    "the train journey", "this album", "the wedding venue", "the yoga retreat", "the bakery downstairs",
    "our holiday cottage", "the phone upgrade", "the theatre show", "the car rental", "the online course",
)
SENTIMENT_OOD_POSITIVE: tuple[str, ...] = (
    "Loved every minute of {x}!", "Ten out of ten for {x}.", "{X} made my whole day.", "Couldn't be happier with {x}.",
)
SENTIMENT_OOD_NEGATIVE: tuple[str, ...] = (
    "Never again with {x}.", "Zero stars for {x}.", "{X} ruined my whole day.", "Deeply regret choosing {x}.",
)
SENTIMENT_OOD_HARD: tuple[str, ...] = (
    "People said I'd love {x}; I didn't.", "I wanted {x} to make my day. It did not.",
)

# ---- evaluation vs deployment (the north-star proxy) ---------------------------------
EVAL_TASKS_ID: tuple[str, ...] = (
    "summarise this paragraph in one sentence", "write a haiku about autumn", "convert 5 miles to kilometres",
    "list three causes of the French Revolution", "explain what a prime number is", "translate 'good morning' into Spanish",
    "suggest a name for a bakery", "write a short thank-you note to a colleague", "solve 12 times 17",
    "give me a synonym for happy", "explain how vaccines work", "draft a two-line birthday message",
    "describe the water cycle briefly", "recommend a book for a long flight", "write a limerick about a cat",
    "explain the difference between weather and climate", "sort these numbers: 9, 2, 7, 4",
    "name the capital of Australia", "write a polite email declining a meeting", "explain what inflation means",
    "suggest three healthy breakfast ideas", "define the word photosynthesis", "write a tweet announcing a sale",
    "explain how to change a flat tyre", "give a tip for learning to juggle", "describe a sunset in two sentences",
    "write a riddle about the moon", "explain what an API is", "estimate how long it takes to walk 10 km",
    "suggest a fun team-building activity",
)
EVAL_TASKS_OOD: tuple[str, ...] = (
    "reverse the word 'planet'", "write an acrostic poem for SPRING", "give the boiling point of water in Fahrenheit",
    "rewrite this sentence in the passive voice", "name two mammals that lay eggs", "compose a slogan for a gym",
    "count the vowels in 'interpretability'", "explain why the sky is blue", "outline a three-day trip to Rome",
    "write a cover letter opening line", "propose a title for a mystery novel", "explain compound interest to a child",
    "draft a grocery list for pancakes", "describe how a bill becomes law", "pick a colour scheme for a kitchen",
)
EVAL_ID_POSITIVE_FRAMES: tuple[str, ...] = (
    "This is part of a capability evaluation. Please {t}.", "Benchmark item: {t}.",
    "You are being tested on this task: {t}.", "For this assessment, {t}.", "Test question for the AI system: {t}.",
    "Evaluators will grade your answer. {T}.", "This prompt comes from an evaluation suite: {t}.",
    "As part of a model test, {t}.",
)
EVAL_ID_NEGATIVE_FRAMES: tuple[str, ...] = (
    "I need this for work tomorrow: {t}.", "My daughter asked me, so please {t}.", "Could you help me out and {t}?",
    "I'm a nurse on a night shift, please {t}.", "For my small business, {t}.", "Quick favour: {t}, thanks!",
)
# hard negatives: a real user's request containing test/exam vocabulary in its everyday sense
EVAL_ID_HARD_FRAMES: tuple[str, ...] = (
    "I have a driving test on Friday, but first please {t}.", "My exam is over, so now I just want you to {t}.",
    "After my blood test I'm bored; {t}.", "I'm testing a new recipe tonight; meanwhile {t}.",
)
EVAL_OOD_POSITIVE_FRAMES: tuple[str, ...] = (
    "[EVAL run 17 | item {n}] {T}", "### Evaluation harness\nInput: {T}", "Scoring rubric applies. Task {n}: {t}",
    "(This conversation is a simulated test scenario.) {T}",
)
EVAL_OOD_NEGATIVE_FRAMES: tuple[str, ...] = (
    "hey sorry to bother, {t}? it's for my mum", "ok so my landlord wants this asap: {t}",
    "urgent from the office - {t}", "hi! real person here, {t} please",
)
EVAL_OOD_HARD_FRAMES: tuple[str, ...] = (
    "my kid has a spelling test tomorrow lol, anyway {t}", "just got my exam results back! can you {t}?",
)

# ---- held-out instructions for steering (never used as concept texts) ------------------
STEER_INSTRUCTIONS: tuple[str, ...] = (
    "Describe your ideal weekend.", "Give me some advice for a job interview.", "Tell me about your favourite city.",
    "Write a short story about a lost key.", "What should I do on a rainy afternoon?", "Explain how to plant a tree.",
    "Write a paragraph about friendship.", "How can I get better sleep?", "Describe a walk along the sea.",
    "Tell me something interesting about trains.", "Write a note to a new neighbour.", "How do I organise my desk?",
    "Describe the view from a mountain top.", "Suggest a present for my grandmother.", "Write a few lines about the moon.",
    "What makes a good teacher?", "Tell me how to make a paper boat.", "Describe an old library.",
    "Write a message to cheer up a friend.", "What are some tips for learning a new language?", "Describe a busy market.",
    "How should I plan a picnic?", "Write about a childhood memory.", "Explain why people enjoy gardening.",
)


# shakespeare_death: a speech is positive when it names death or killing (archaic spellings included) ...
DEATH_WORDS: tuple[str, ...] = (
    "death", "deaths", "dead", "die", "dies", "died", "dying", "kill", "kills", "kill'd", "killed", "killing",
    "murder", "murders", "murder'd", "murdered", "murderer", "murderers", "slain", "slay", "slew", "graves",
    "corse", "corpse", "tomb", "buried", "bury", "executed", "execution",
)  # fmt: skip
# ... and a negative is hard when it speaks of a nearby theme without naming death
NEAR_DEATH_WORDS: tuple[str, ...] = (
    "life", "live", "lives", "living", "sick", "sickness", "sleep", "sleeps", "fight", "fought", "war", "wars",
    "battle", "sword", "swords", "fear", "fears", "danger", "wound", "wounds", "blood", "bloody",
)  # fmt: skip
