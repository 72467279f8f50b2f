// Every browser suite in one process, so one `wrangler dev` (harness.mjs)
// serves them all; they run in this order, one test at a time. A suite can
// also run alone: node --test tests/browser/<name>.suite.mjs
import "./dashboard.suite.mjs";
import "./pages.suite.mjs";
import "./analytics.suite.mjs";
import "./links.suite.mjs";
import "./link-page.suite.mjs";
import "./capture.suite.mjs";
