package demo

// vocabulary holds the words demo records are made of. It is built once per Generator, so
// the package keeps no global state.
type vocabulary struct {
	firstNames   []string
	lastNames    []string
	companyHeads []string
	companyTails []string
	distributors []string
	cities       []string
	industries   []string
	owners       []string
	domains      []string
	categories   []category
	quantities   []int
	// channels of purchases and costs, addressed by the constants below.
	channels []string
	// costCategories are the categories of cost transactions.
	acquisition, support string
}

// category is a product category with products in it.
type category struct {
	name     string
	products []string
}

// Indexes into vocabulary.channels.
const (
	channelOnline = iota
	channelStore
	channelDealer
	channelSales
)

// country is a country with the relative share of customers living there.
type country struct {
	code   string
	weight float64
	phone  string
}

// countriesFor returns the customer countries that fit a currency: the euro area for EUR,
// North America for USD, the British Isles for GBP, and a mix of all of them otherwise.
func countriesFor(currency string) []country {
	euro := []country{
		{"DE", 25, "+49"}, {"FR", 18, "+33"}, {"IT", 12, "+39"}, {"ES", 10, "+34"}, {"NL", 8, "+31"},
		{"BE", 5, "+32"}, {"AT", 5, "+43"}, {"PT", 3, "+351"}, {"IE", 2, "+353"}, {"FI", 2, "+358"},
	}
	america := []country{{"US", 82, "+1"}, {"CA", 12, "+1"}, {"MX", 6, "+52"}}
	british := []country{{"GB", 90, "+44"}, {"IE", 10, "+353"}}
	switch currency {
	case "EUR":
		return euro
	case "USD":
		return america
	case "GBP":
		return british
	}
	return append(append(euro, america...), british...)
}

func newVocabulary() *vocabulary {
	return &vocabulary{
		firstNames: []string{
			"Ada", "Alan", "Amelia", "Anna", "Ben", "Carla", "Chen", "Clara", "David", "Elena",
			"Emil", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Isaac", "Jonas",
			"Julia", "Karim", "Lara", "Leo", "Lina", "Luca", "Maria", "Marie", "Mateo", "Mia",
			"Nina", "Noah", "Olga", "Omar", "Paul", "Priya", "Rosa", "Sara", "Sofia", "Tom",
			"Yara", "Yusuf", "Zoe", "Jan", "Eva", "Max", "Lea", "Theo",
		},
		lastNames: []string{
			"Almeida", "Bauer", "Becker", "Bernard", "Costa", "Dubois", "Fischer", "Garcia",
			"Hansen", "Hoffmann", "Janssen", "Jensen", "Keller", "Klein", "Koch", "Lambert",
			"Lopez", "Martin", "Meyer", "Moreau", "Muller", "Nielsen", "Novak", "Peeters",
			"Perez", "Petit", "Ricci", "Richter", "Romano", "Rossi", "Schmidt", "Schneider",
			"Schulz", "Silva", "Smith", "Wagner", "Weber", "Wolf", "Young", "Zimmermann",
		},
		companyHeads: []string{
			"Alpine", "Atlas", "Aurora", "Beacon", "Blue River", "Cedar", "Civic", "Crown",
			"Delta", "Evergreen", "Falcon", "Granite", "Harbor", "Helix", "Horizon", "Keystone",
			"Lumen", "Meridian", "Nordic", "Oak Valley", "Orbit", "Pioneer", "Quantum", "Redwood",
			"Silverline", "Summit", "Terra", "Trident", "Vertex", "Westbrook",
		},
		companyTails: []string{
			"Systems", "Industries", "Health", "Logistics", "Foods", "Energy", "Labs", "Works",
			"Holdings", "Partners", "Group", "Technologies", "Clinics", "Schools", "Hotels",
		},
		distributors: []string{
			"Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware", "Proseware",
			"Woodgrove", "Coho", "Lucerne", "Adatum", "Relecloud", "Fourth Coffee", "Trey",
			"Wide World", "Blue Yonder", "Humongous", "Margie", "Alpine Ski", "Datum",
		},
		cities: []string{
			"Amsterdam", "Antwerp", "Barcelona", "Berlin", "Bologna", "Bordeaux", "Dublin",
			"Hamburg", "Helsinki", "Lisbon", "Lyon", "Madrid", "Milan", "Munich", "Porto",
			"Rotterdam", "Seville", "Toulouse", "Turin", "Vienna",
		},
		industries: []string{
			"manufacturing", "retail", "education", "healthcare", "public sector", "hospitality",
			"logistics", "construction", "software", "finance",
		},
		owners: []string{
			"Anna Schmidt", "Marc Dubois", "Giulia Rossi", "Pablo Garcia", "Sanne de Vries",
			"Tobias Weber", "Claire Martin", "Jonas Keller",
		},
		domains: []string{"example.com", "example.org", "example.net"},
		categories: []category{
			{"electronics", []string{"Wireless Headphones", "Smart Speaker", "USB-C Charger", "E-Reader", "Fitness Tracker", "Action Camera"}},
			{"home", []string{"Espresso Machine", "Bed Linen Set", "Table Lamp", "Cookware Set", "Air Purifier", "Rug"}},
			{"fashion", []string{"Rain Jacket", "Running Shoes", "Wool Sweater", "Leather Belt", "Backpack", "Sunglasses"}},
			{"sports", []string{"Yoga Mat", "Bike Helmet", "Tennis Racket", "Dumbbell Set", "Camping Tent", "Water Bottle"}},
			{"books", []string{"Cookbook", "Travel Guide", "Novel", "Children's Book", "Biography", "Comic"}},
			{"beauty", []string{"Face Cream", "Shampoo", "Perfume", "Sunscreen", "Lip Balm", "Hair Dryer"}},
		},
		quantities:  []int{1, 2, 3, 4, 5},
		channels:    []string{"online", "store", "dealer", "sales"},
		acquisition: "acquisition",
		support:     "support",
	}
}
