"""Word lists, weights and text templates of the synthetic data set (plain data, no logic).

Every string here is safe in COPY text format and inside a JSON string: no backslash, tab, newline or quote.
"""

from __future__ import annotations

__all__ = [
    "FIRST_NAMES", "LAST_NAMES", "ADJECTIVES", "NOUNS", "REPO_PATTERNS", "LANGUAGES", "LANGUAGE_ECOSYSTEM",
    "PACKAGES", "EMAIL_DOMAINS", "LOCATIONS", "COMPANIES", "BIOS", "DESCRIPTIONS", "PURPOSES",
    "INSIGHT_TYPES", "MODEL_VERSIONS", "JOB_TYPES", "JOB_ERRORS", "AUDIT_ACTIONS", "USER_AGENTS",
    "KEY_NAMES", "PERMISSIONS", "HOTSPOT_FILES", "DOC_FILES", "METRICS", "BENCHMARKS",
]

FIRST_NAMES = (
    "alex", "anna", "ben", "carla", "chen", "daniel", "david", "elena", "emma", "felix", "fatima", "george",
    "hannah", "hiro", "igor", "isabel", "jack", "jana", "james", "jin", "julia", "karim", "kate", "lars", "laura",
    "leo", "lina", "lucas", "maria", "mark", "marta", "max", "mei", "michael", "mia", "nadia", "nico", "nina",
    "oliver", "olga", "omar", "pablo", "paul", "priya", "rahul", "raj", "rosa", "sam", "sara", "sofia", "sven",
    "tom", "tanya", "victor", "wei", "yuki", "yusuf", "zoe", "ana", "arjun", "bruno", "chloe", "diego", "eric",
    "ivan", "kenji", "li", "luca", "noah", "ravi",
)
LAST_NAMES = (
    "smith", "mueller", "wang", "garcia", "kim", "nguyen", "rossi", "silva", "tanaka", "kowalski", "novak",
    "ivanov", "schmidt", "martin", "lopez", "chen", "zhang", "sato", "patel", "singh", "khan", "haddad", "costa",
    "jansen", "berg", "larsen", "dubois", "moreau", "fischer", "weber", "meyer", "wagner", "becker", "hoffmann",
    "brown", "jones", "miller", "davis", "wilson", "taylor", "anderson", "thomas", "moore", "jackson", "white",
    "harris", "clark", "lewis", "walker", "young", "park", "lee", "li", "liu", "yang", "huang", "zhao", "wu",
    "petrov", "popescu",
)
ADJECTIVES = (
    "awesome", "fast", "tiny", "simple", "smart", "open", "async", "lazy", "rapid", "secure", "modern", "minimal",
    "super", "hyper", "micro", "mega", "quick", "clean", "deep", "easy", "fancy", "free", "golden", "happy",
    "light", "lucky", "magic", "native", "neat", "pure", "quiet", "rusty", "shiny", "silent", "solid", "swift",
    "blue", "red", "green", "dark", "bright", "cosmic", "quantum", "hidden", "little", "big", "wild", "cloud",
)
NOUNS = (
    "api", "app", "bot", "cache", "cli", "compiler", "config", "crawler", "dashboard", "db", "deploy", "docs",
    "editor", "engine", "framework", "gateway", "graph", "kit", "lab", "lib", "linter", "logger", "mapper",
    "monitor", "notes", "orm", "parser", "pipeline", "platform", "player", "plugin", "proxy", "queue", "router",
    "runner", "scheduler", "scraper", "sdk", "search", "server", "shell", "site", "store", "sync", "template",
    "theme", "toolkit", "tracker", "ui", "utils", "validator", "viewer", "vm", "wallet", "web", "widget",
    "workflow", "agent", "llm", "vector", "chat", "auth", "cms", "blog", "forms", "icons", "charts", "maps",
    "stream", "tensor", "model", "dataset", "notebook", "game", "emulator", "kernel", "browser", "terminal",
)
#: Repository name patterns: (format, uses adjective, uses noun). Never ending in "-<digits>" (dedupe suffix).
REPO_PATTERNS = (
    "{adj}-{noun}", "{noun}", "{adj}{noun}", "{noun}-{noun2}", "{noun}.js", "py{noun}", "{noun}-rs", "go-{noun}",
    "{noun}-cli", "{adj}-{noun}-kit", "{first}-{noun}", "dotfiles", "{noun}-examples", "awesome-{noun}",
)

#: (language, share of repositories, forks per star relative to the median). None: no language detected.
LANGUAGES = (
    ("JavaScript", 0.150, 1.2), ("Python", 0.150, 1.1), ("TypeScript", 0.110, 0.8), ("Java", 0.075, 1.6),
    ("Go", 0.055, 0.7), ("C++", 0.050, 1.2), ("C#", 0.040, 1.0), ("PHP", 0.035, 1.1), ("Rust", 0.040, 0.6),
    ("C", 0.035, 1.0), ("Ruby", 0.025, 0.9), ("Shell", 0.030, 0.8), ("Jupyter Notebook", 0.035, 1.8),
    ("HTML", 0.030, 1.3), ("Kotlin", 0.020, 0.9), ("Swift", 0.018, 0.7), ("CSS", 0.012, 1.3), ("Dart", 0.012, 0.9),
    ("Vue", 0.010, 1.0), ("Scala", 0.007, 0.8), ("R", 0.007, 1.1), ("Lua", 0.005, 0.8), ("Objective-C", 0.005, 1.0),
    ("Haskell", 0.003, 0.5), ("Elixir", 0.003, 0.5), ("Zig", 0.002, 0.4), (None, 0.036, 1.0),
)
LANGUAGE_ECOSYSTEM = {
    "JavaScript": "npm", "TypeScript": "npm", "Vue": "npm", "Python": "pypi", "Jupyter Notebook": "pypi",
    "Java": "maven", "Kotlin": "maven", "Scala": "maven", "Go": "go", "Rust": "cargo", "Ruby": "rubygems",
    "PHP": "packagist", "C#": "nuget", "Dart": "pub", "Elixir": "hex", "Swift": "swift",
}
PACKAGES = {
    "npm": ("lodash", "express", "axios", "react", "webpack", "minimist", "jsonwebtoken", "moment", "ws", "semver"),
    "pypi": ("requests", "urllib3", "django", "flask", "numpy", "pillow", "jinja2", "pyyaml", "cryptography",
             "tornado"),
    "maven": ("log4j-core", "jackson-databind", "spring-web", "guava", "commons-text", "netty-codec", "snakeyaml"),
    "go": ("golang.org/x/net", "golang.org/x/crypto", "github.com/gin-gonic/gin", "google.golang.org/grpc"),
    "cargo": ("tokio", "hyper", "serde_json", "openssl", "regex", "time", "smallvec"),
    "rubygems": ("rails", "nokogiri", "rack", "puma", "activesupport"),
    "packagist": ("laravel/framework", "guzzlehttp/guzzle", "symfony/http-kernel", "twig/twig"),
    "nuget": ("Newtonsoft.Json", "System.Text.Encodings.Web", "log4net", "Npgsql"),
    "pub": ("http", "provider", "dio"),
    "hex": ("phoenix", "plug", "cowboy"),
    "swift": ("Alamofire", "swift-nio", "Kingfisher"),
    "other": ("openssl", "zlib", "libcurl", "sqlite", "libxml2", "libpng"),
}
ECOSYSTEMS = tuple(PACKAGES)

EMAIL_DOMAINS = (("gmail.com", 0.42), ("users.noreply.github.com", 0.2), ("outlook.com", 0.1), ("proton.me", 0.06),
                 ("yahoo.com", 0.05), ("qq.com", 0.05), ("163.com", 0.03), ("fastmail.com", 0.02), ("gmx.de", 0.03),
                 ("hey.com", 0.02), ("icloud.com", 0.02))
LOCATIONS = (
    ("San Francisco, CA", 0.08), ("Berlin, Germany", 0.06), ("London, UK", 0.06), ("Beijing, China", 0.07),
    ("Bangalore, India", 0.07), ("New York, NY", 0.06), ("Seattle, WA", 0.04), ("Tokyo, Japan", 0.04),
    ("Paris, France", 0.04), ("Shanghai, China", 0.05), ("Sao Paulo, Brazil", 0.04), ("Toronto, Canada", 0.03),
    ("Amsterdam, Netherlands", 0.03), ("Moscow, Russia", 0.03), ("Seoul, South Korea", 0.03), ("Remote", 0.05),
    ("Stockholm, Sweden", 0.02), ("Zurich, Switzerland", 0.02), ("Sydney, Australia", 0.02), ("Lagos, Nigeria", 0.02),
    ("Warsaw, Poland", 0.02), ("Austin, TX", 0.03), ("Hangzhou, China", 0.03), ("Munich, Germany", 0.02),
    ("Earth", 0.02), ("Buenos Aires, Argentina", 0.02), ("Singapore", 0.02),
)
COMPANIES = (
    "@google", "@microsoft", "@github", "@meta", "@amazon", "@alibaba", "@tencent", "@bytedance", "@shopify",
    "@vercel", "@cloudflare", "@datadog", "@elastic", "@gitlab", "@redhat", "@canonical", "@mozilla", "@stripe",
    "Freelance", "Self-employed", "Student", "@apache", "@netflix", "@spotify", "@sap", "@jetbrains",
)
BIOS = (
    "Software engineer. Open source enthusiast.", "Full-stack developer", "Backend engineer who loves Go and Rust",
    "Data scientist | ML | Python", "Building developer tools", "Maintainer of a few small libraries",
    "PhD student working on compilers", "Frontend engineer, design systems", "DevOps and cloud infrastructure",
    "I write code and sometimes it works", "Security researcher", "Indie hacker", "Mobile developer (iOS, Android)",
    "Game developer 🎮", "Coffee ☕ and code", "Learning in public", "Embedded systems and IoT",
    "Open source maintainer ❤️", "数据工程师", "机器学习研究员", "Rustacean 🦀", "Pythonista 🐍",
)
PURPOSES = (
    "building REST APIs", "parsing large log files", "managing dotfiles", "real-time chat applications",
    "static site generation", "machine learning experiments", "home automation", "scraping public data",
    "testing HTTP services", "deploying to Kubernetes", "writing CLIs", "visualising time series",
    "embedded devices", "game prototypes", "LLM-powered agents", "vector search", "secure file sharing",
    "monitoring microservices", "learning algorithms", "mobile apps",
)
DESCRIPTIONS = (
    "A {adj} {noun} for {purpose}", "{Adj} and lightweight {noun} for {purpose}", "The {adj} way to do {purpose}",
    "{Noun} written in {language}", "My personal {noun} for {purpose}", "🚀 {Adj} {noun} for {purpose}",
    "Curated list of resources for {purpose}", "Experimental {noun}: {purpose}", "{Adj} {noun} ({language})",
    "一个用于{purpose}的{noun}", "Production-ready {noun} for {purpose}", "Yet another {noun}",
)

#: Insight type: (share, mean confidence with gi-1.0, tag). Later model versions are better calibrated.
INSIGHT_TYPES = (
    ("code_quality", 0.22, 0.71, "quality"), ("dependency_risk", 0.20, 0.78, "dependencies"),
    ("security_vulnerability", 0.14, 0.83, "security"), ("documentation", 0.12, 0.66, "docs"),
    ("community_health", 0.12, 0.62, "community"), ("performance", 0.10, 0.58, "performance"),
    ("trend_prediction", 0.10, 0.49, "trends"),
)
#: Model version: (released, shift of the mean confidence, concentration of the beta distribution).
MODEL_VERSIONS = (("gi-1.0", "2024-06-01", 0.00, 7.0), ("gi-1.1", "2025-09-01", 0.05, 12.0),
                  ("gi-2.0", "2026-03-15", 0.11, 22.0))

#: Analysis job type: (share, median run time in seconds).
JOB_TYPES = (("full_analysis", 0.35, 420.0), ("security_scan", 0.2, 150.0), ("dependency_audit", 0.15, 90.0),
             ("code_quality", 0.15, 240.0), ("trend_refresh", 0.1, 30.0), ("documentation_review", 0.05, 60.0))
JOB_ERRORS = (
    "Clone failed: repository not found (HTTP 404)", "Analysis timed out after 3600 s",
    "GitHub API rate limit exceeded (HTTP 403)", "Worker ran out of memory while parsing the repository",
    "Unsupported repository layout: no source files detected", "Dependency resolution failed: lockfile is invalid",
    "Clone failed: repository is larger than 5 GB", "Internal error: model service unavailable (HTTP 503)",
)

#: Audit action: (share, resource type, where resource_id points).
AUDIT_ACTIONS = (
    ("user.login", 0.34, "user", "user"), ("insight.viewed", 0.22, "insight", "insight"),
    ("repository.viewed", 0.14, "repository", "repository"), ("repository.followed", 0.07, "repository", "repository"),
    ("repository.unfollowed", 0.02, "repository", "repository"), ("analysis.requested", 0.08, "analysis_job", "job"),
    ("api_key.created", 0.015, "api_key", "api_key"), ("api_key.revoked", 0.005, "api_key", "api_key"),
    ("settings.updated", 0.04, "user", "user"), ("report.exported", 0.05, "repository", "repository"),
    ("user.logout", 0.04, "user", "user"),
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:141.0) Gecko/20100101 Firefox/141.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "gitinsight-cli/1.4.2 (linux; python 3.12)", "python-requests/2.32.3", "curl/8.5.0",
    "GitInsight-Slack-Bot/2.1", "Go-http-client/2.0",
)
KEY_NAMES = ("CI pipeline", "Local development", "Grafana dashboard", "Slack bot", "Nightly export", "Jupyter",
             "GitHub Actions", "Data warehouse sync", "Personal script", "Staging")
PERMISSIONS = ("read:repositories", "read:insights", "write:analysis", "read:audit", "admin")
HOTSPOT_FILES = ("src/main.py", "src/index.ts", "lib/core.js", "src/server.go", "src/lib.rs", "app/models.py",
                 "src/utils.js", "pkg/api/handler.go", "src/components/App.vue", "core/engine.cpp",
                 "src/main/java/App.java", "internal/db/db.go", "scripts/build.sh")
DOC_FILES = ("CONTRIBUTING.md", "CHANGELOG.md", "CODE_OF_CONDUCT.md", "SECURITY.md", "docs/api.md",
             "docs/installation.md", "examples/README.md", "LICENSE")
METRICS = ("cyclomatic_complexity", "duplication", "maintainability_index", "test_coverage", "lint_warnings")
BENCHMARKS = ("build_time", "cold_start", "p95_latency", "memory_peak", "bundle_size", "test_suite_time")
