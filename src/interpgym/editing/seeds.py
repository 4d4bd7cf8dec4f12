"""Hand-written seed lists of candidate facts, one table per relation.

Provenance and licence: written by hand for interpgym from general knowledge
(country continents, official languages, currencies, cities, landmarks, companies,
people's occupations, athletes' sports) and checked by reading; no third-party data
set was copied. Facts themselves are not copyrightable; these lists are distributed
under interpgym's own licence. They are *candidates*: `facts.build_fact_set` keeps
only those the model under study demonstrably knows, and reports how many it dropped.

Every relation is many-to-one (several subjects share an object), so a fact's
neighbourhood prompts (other subjects with the same relation and true object, as in
CounterFact) exist. Each relation has its rewrite template (`prompt`), held-out
paraphrase templates, generation prompts and a short description for the datasheet.
Objects are written as they follow the prompt (a leading space is added when scored).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RelationSeed:
    """One relation: templates (with `{}` for the subject) and its candidate (subject, object) pairs."""

    name: str
    description: str
    prompt: str
    paraphrases: tuple[str, ...]
    generation: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]


def _pairs(table: str) -> tuple[tuple[str, str], ...]:
    """Parse `object: subject, subject, ...` lines (subjects separated by `;` where they contain commas)."""
    pairs = []
    for line in table.strip().splitlines():
        obj, _, subjects = line.partition(":")
        sep = ";" if ";" in subjects else ","
        pairs.extend((s.strip(), obj.strip()) for s in subjects.split(sep) if s.strip())
    return tuple(pairs)


CONTINENT = _pairs("""
Europe: France, Germany, Italy, Spain, Portugal, Poland, Sweden, Norway, Finland, Denmark, Greece, Austria, Hungary, Romania, Bulgaria, Belgium, the Netherlands, Switzerland, Ireland, Ukraine, Serbia, Croatia, Slovakia, Slovenia, Estonia, Latvia, Lithuania, Iceland, Albania, Belarus, Moldova, the Czech Republic, Luxembourg, Montenegro, Bosnia and Herzegovina, North Macedonia, Malta, Monaco
Asia: China, Japan, India, Pakistan, Bangladesh, Vietnam, Thailand, Indonesia, Malaysia, the Philippines, Mongolia, Nepal, Bhutan, Sri Lanka, Cambodia, Laos, Myanmar, Afghanistan, Iran, Iraq, Kazakhstan, Uzbekistan, Kyrgyzstan, Tajikistan, Turkmenistan, South Korea, North Korea, Saudi Arabia, Syria, Jordan, Lebanon, Yemen, Oman, Qatar, Kuwait, Singapore, Taiwan, Israel, the United Arab Emirates, Bahrain
Africa: Nigeria, Kenya, Egypt, Ethiopia, Ghana, Morocco, Algeria, Tunisia, Libya, Sudan, South Africa, Uganda, Tanzania, Zambia, Zimbabwe, Angola, Mozambique, Namibia, Botswana, Senegal, Mali, Niger, Chad, Cameroon, Somalia, Rwanda, Burundi, Madagascar, Malawi, Gabon, the Democratic Republic of the Congo, Ivory Coast, Burkina Faso, Guinea, Sierra Leone, Liberia, Togo, Benin, Mauritania, Eritrea
North America: Canada, Mexico, the United States, Cuba, Jamaica, Haiti, Guatemala, Honduras, Nicaragua, Panama, Costa Rica, El Salvador, the Dominican Republic, the Bahamas, Belize
South America: Brazil, Argentina, Chile, Peru, Colombia, Venezuela, Ecuador, Bolivia, Paraguay, Uruguay, Guyana, Suriname
Oceania: Australia, New Zealand, Fiji, Papua New Guinea, Samoa, Tonga, Vanuatu, the Solomon Islands
""")

LANGUAGE = _pairs("""
English: the United Kingdom, the United States, Australia, New Zealand, Ireland, Jamaica, the Bahamas, Ghana, Nigeria, Liberia, Zambia, Zimbabwe, Uganda, Botswana, Sierra Leone, Belize, Guyana, Fiji
Spanish: Spain, Mexico, Argentina, Chile, Peru, Colombia, Venezuela, Ecuador, Bolivia, Paraguay, Uruguay, Cuba, Guatemala, Honduras, Nicaragua, Panama, Costa Rica, El Salvador, the Dominican Republic
French: France, Belgium, Senegal, Mali, Niger, Chad, Ivory Coast, Burkina Faso, Guinea, Togo, Benin, Gabon, Monaco, Haiti, Madagascar, Cameroon
Arabic: Egypt, Saudi Arabia, Iraq, Syria, Jordan, Lebanon, Yemen, Oman, Qatar, Kuwait, Libya, Algeria, Morocco, Tunisia, Sudan, Bahrain, the United Arab Emirates, Mauritania
Portuguese: Portugal, Brazil, Angola, Mozambique, Cape Verde, Guinea-Bissau, East Timor, Sao Tome and Principe
German: Germany, Austria, Liechtenstein
Russian: Russia, Belarus, Kazakhstan, Kyrgyzstan
Dutch: the Netherlands, Suriname
""")

CURRENCY = _pairs("""
euro: France, Germany, Italy, Spain, Portugal, Greece, Austria, Belgium, the Netherlands, Ireland, Finland, Slovakia, Slovenia, Estonia, Latvia, Lithuania, Luxembourg, Malta, Cyprus, Croatia, Montenegro, Kosovo
dollar: the United States, Canada, Australia, New Zealand, Singapore, Jamaica, the Bahamas, Belize, Guyana, Fiji, Liberia, Namibia, Taiwan, Hong Kong, Zimbabwe, Ecuador, El Salvador
peso: Mexico, Argentina, Chile, Colombia, Cuba, Uruguay, the Philippines, the Dominican Republic
pound: the United Kingdom, Egypt, Lebanon, Sudan, Syria, South Sudan
franc: Switzerland, Senegal, Mali, Niger, Chad, Cameroon, Ivory Coast, Burkina Faso, Guinea, Togo, Benin, Gabon, Rwanda, Burundi, the Democratic Republic of the Congo, Madagascar
dinar: Algeria, Tunisia, Iraq, Jordan, Kuwait, Libya, Serbia, Bahrain
rupee: India, Pakistan, Sri Lanka, Nepal, Mauritius, the Seychelles
shilling: Kenya, Uganda, Tanzania, Somalia
krona: Sweden, Iceland
rial: Iran, Oman, Yemen
""")

CITY_COUNTRY = _pairs("""
France: Paris, Marseille, Lyon, Toulouse, Nice, Bordeaux, Lille, Strasbourg, Nantes, Montpellier
Germany: Berlin, Munich, Hamburg, Frankfurt, Cologne, Stuttgart, Dresden, Leipzig, Düsseldorf, Bremen
Italy: Rome, Milan, Naples, Turin, Florence, Venice, Bologna, Palermo, Genoa, Verona
Spain: Madrid, Barcelona, Seville, Valencia, Bilbao, Malaga, Zaragoza, Granada, Toledo
Japan: Tokyo, Osaka, Kyoto, Yokohama, Nagoya, Sapporo, Hiroshima, Kobe, Fukuoka, Nagasaki
China: Beijing, Shanghai, Guangzhou, Shenzhen, Wuhan, Chengdu, Nanjing, Tianjin, Xi'an, Hangzhou
India: Mumbai, Delhi, Bangalore, Chennai, Kolkata, Hyderabad, Pune, Jaipur, Ahmedabad, Lucknow
the United States: New York, Los Angeles, Chicago, Houston, Boston, Seattle, San Francisco, Miami, Dallas, Philadelphia, Detroit, Atlanta
the United Kingdom: London, Manchester, Liverpool, Birmingham, Leeds, Glasgow, Edinburgh, Bristol, Oxford, Cambridge
Canada: Toronto, Montreal, Vancouver, Ottawa, Calgary, Edmonton, Winnipeg, Quebec City
Australia: Sydney, Melbourne, Brisbane, Perth, Adelaide, Canberra, Hobart, Darwin
Brazil: Rio de Janeiro, Sao Paulo, Brasilia, Salvador, Fortaleza, Recife, Manaus, Porto Alegre
Russia: Moscow, Saint Petersburg, Novosibirsk, Yekaterinburg, Kazan, Vladivostok, Omsk, Samara
Mexico: Mexico City, Guadalajara, Monterrey, Cancun, Tijuana, Puebla, Acapulco, Oaxaca
""")

LANDMARK_COUNTRY = _pairs("""
France: the Eiffel Tower, the Louvre, the Arc de Triomphe, Notre-Dame de Paris, the Palace of Versailles, Mont Saint-Michel, the Champs-Élysées
Italy: the Colosseum, the Leaning Tower of Pisa, the Trevi Fountain, the Pantheon, Pompeii, the Sistine Chapel, Mount Vesuvius
the United States: the Statue of Liberty, the Grand Canyon, the Golden Gate Bridge, Mount Rushmore, the White House, Times Square, Yellowstone National Park, the Empire State Building
the United Kingdom: Big Ben, Stonehenge, the Tower of London, Buckingham Palace, Westminster Abbey, the London Eye
China: the Great Wall, the Forbidden City, the Terracotta Army, Tiananmen Square, the Summer Palace, the Three Gorges Dam
Egypt: the Great Pyramid of Giza, the Sphinx, the Valley of the Kings, Abu Simbel, the Suez Canal, Karnak Temple
India: the Taj Mahal, the Red Fort, the Golden Temple, the Gateway of India, Qutub Minar, Hawa Mahal
Japan: Mount Fuji, the Tokyo Tower, Fushimi Inari Shrine, Himeji Castle, the Kinkaku-ji temple, the Itsukushima Shrine
Australia: the Sydney Opera House, Uluru, the Great Barrier Reef, the Sydney Harbour Bridge, Bondi Beach, Kakadu National Park
""")

COMPANY_COUNTRY = _pairs("""
Japan: Toyota, Honda, Sony, Nintendo, Panasonic, Nissan, Mitsubishi, Canon, Toshiba, Yamaha, Suzuki, Mazda
Germany: BMW, Volkswagen, Mercedes-Benz, Siemens, Adidas, Bosch, Porsche, Audi, Bayer, Lufthansa, SAP, Puma
the United States: Apple, Microsoft, Google, Amazon, IBM, Intel, Coca-Cola, Ford, Boeing, McDonald's, Walmart, Nike
South Korea: Samsung, Hyundai, LG, Kia, Daewoo, SK Hynix
France: Renault, Peugeot, Michelin, L'Oréal, Airbus, Danone, Chanel, Louis Vuitton
Italy: Ferrari, Fiat, Lamborghini, Gucci, Prada, Pirelli, Maserati
Sweden: Volvo, IKEA, Ericsson, Spotify, Saab, Electrolux, H&M
China: Huawei, Alibaba, Tencent, Xiaomi, Lenovo, Baidu
""")

OCCUPATION = _pairs("""
painter: Pablo Picasso, Vincent van Gogh, Claude Monet, Rembrandt, Salvador Dalí, Frida Kahlo, Paul Cézanne, Henri Matisse, Edgar Degas, Gustav Klimt, Edvard Munch, Jackson Pollock, Paul Gauguin, Pierre-Auguste Renoir, Caravaggio, Titian
composer: Wolfgang Amadeus Mozart, Ludwig van Beethoven, Johann Sebastian Bach, Frédéric Chopin, Pyotr Ilyich Tchaikovsky, Antonio Vivaldi, Johannes Brahms, Franz Schubert, Richard Wagner, Giuseppe Verdi, Joseph Haydn, Claude Debussy, Igor Stravinsky, George Frideric Handel, Franz Liszt, Gustav Mahler
physicist: Albert Einstein, Isaac Newton, Niels Bohr, Max Planck, Richard Feynman, Werner Heisenberg, Erwin Schrödinger, Enrico Fermi, Stephen Hawking, Paul Dirac, Michael Faraday, James Clerk Maxwell, Wolfgang Pauli
novelist: Charles Dickens, Jane Austen, Leo Tolstoy, Fyodor Dostoevsky, Ernest Hemingway, Mark Twain, Virginia Woolf, George Orwell, Franz Kafka, Gabriel García Márquez, Victor Hugo, Herman Melville, F. Scott Fitzgerald, Agatha Christie
philosopher: Plato, Aristotle, Socrates, Immanuel Kant, Friedrich Nietzsche, René Descartes, John Locke, David Hume, Jean-Jacques Rousseau, Confucius, Baruch Spinoza, Søren Kierkegaard, Arthur Schopenhauer, Thomas Hobbes
poet: Homer, Dante Alighieri, John Keats, Lord Byron, Walt Whitman, Emily Dickinson, Percy Bysshe Shelley, William Wordsworth, Robert Frost, Sylvia Plath, Rumi, Pablo Neruda
""")

SPORT = _pairs("""
football: Lionel Messi, Cristiano Ronaldo, Pelé, Diego Maradona, Zinedine Zidane, Neymar, Kylian Mbappé, David Beckham, Ronaldinho, Johan Cruyff, Wayne Rooney, Thierry Henry, Mohamed Salah, Zlatan Ibrahimović
basketball: Michael Jordan, LeBron James, Kobe Bryant, Stephen Curry, Shaquille O'Neal, Magic Johnson, Larry Bird, Kevin Durant, Kareem Abdul-Jabbar, Tim Duncan, Dirk Nowitzki, Giannis Antetokounmpo
tennis: Roger Federer, Rafael Nadal, Novak Djokovic, Serena Williams, Venus Williams, Andy Murray, Pete Sampras, Andre Agassi, Steffi Graf, Martina Navratilova, Björn Borg, Maria Sharapova
golf: Tiger Woods, Jack Nicklaus, Arnold Palmer, Phil Mickelson, Rory McIlroy, Gary Player, Seve Ballesteros, Ernie Els
boxing: Muhammad Ali, Mike Tyson, Floyd Mayweather, Manny Pacquiao, Joe Frazier, George Foreman, Sugar Ray Leonard, Evander Holyfield
baseball: Babe Ruth, Derek Jeter, Jackie Robinson, Lou Gehrig, Hank Aaron, Willie Mays, Barry Bonds, Joe DiMaggio, Ichiro Suzuki, Mickey Mantle
cricket: Sachin Tendulkar, Don Bradman, Virat Kohli, Brian Lara, Shane Warne, Ricky Ponting, MS Dhoni, Imran Khan
""")

RELATIONS: tuple[RelationSeed, ...] = (
    RelationSeed(
        "country_continent", "continent a country lies in",
        "{} is a country in the continent of",
        ("{} is located in the continent of", "The country of {} is part of the continent of"),
        ("{} is a country where", "The people of {} often"), CONTINENT,
    ),
    RelationSeed(
        "country_language", "official (main) language of a country",
        "The official language of {} is",
        ("In {}, most people speak", "The main language spoken in {} is"),
        ("The people of {} speak", "In {}, the newspapers are written in"), LANGUAGE,
    ),
    RelationSeed(
        "country_currency", "the currency's common name (euro, dollar, peso, ...)",
        "The currency of {} is the",
        ("In {}, people pay with the", "The official currency used in {} is the"),
        ("When shopping in {}, you pay with", "The money of {} is called"), CURRENCY,
    ),
    RelationSeed(
        "city_country", "country a city is in",
        "{} is a city in the country of",
        ("The city of {} is located in", "{} is one of the largest cities of"),
        ("The city of {} is famous for", "Visitors to {} can see"), CITY_COUNTRY,
    ),
    RelationSeed(
        "landmark_country", "country a landmark is in",
        "{} is located in the country of",
        ("You can visit {} in the country of", "{} is a famous landmark in"),
        ("Tourists who visit {} can", "{} was built"), LANDMARK_COUNTRY,
    ),
    RelationSeed(
        "company_country", "country a company was founded in",
        "{} is a company from the country of",
        ("The company {} was founded in", "{} has its headquarters in the country of"),
        ("{} is known for", "The company {} sells"), COMPANY_COUNTRY,
    ),
    RelationSeed(
        "person_occupation", "what a famous person is best known as",
        "{} was a famous",
        ("{} is best known as a", "By profession, {} was a"),
        ("{} is remembered for", "The work of {}"), OCCUPATION,
    ),
    RelationSeed(
        "athlete_sport", "the sport an athlete is famous for",
        "{} is famous for playing the sport of",
        ("{} is a professional player of", "The sport played by {} is"),
        ("{} is known for", "Fans of {} remember"), SPORT,
    ),
)
