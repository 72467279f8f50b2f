-- A capture page's redirect after signup must be an https URL in plain
-- ASCII (an IDN in punycode): browsers are sent there, and a non-ASCII
-- value cannot travel in a Location header. The functions check the full
-- rules (shared/src/url.rs) when they read it; these triggers refuse the
-- worst at write time, whoever writes.
CREATE TRIGGER IF NOT EXISTS capture_pages_redirect_insert
BEFORE INSERT ON capture_pages
WHEN NEW.redirect_url IS NOT NULL AND NEW.redirect_url <> ''
  AND (NEW.redirect_url NOT LIKE 'https://%' OR NEW.redirect_url GLOB '*[^!-~]*' OR length(NEW.redirect_url) > 2048)
BEGIN SELECT RAISE(ABORT, 'redirect_url must be an https URL in ASCII (punycode for international names)'); END;

CREATE TRIGGER IF NOT EXISTS capture_pages_redirect_update
BEFORE UPDATE OF redirect_url ON capture_pages
WHEN NEW.redirect_url IS NOT NULL AND NEW.redirect_url <> ''
  AND (NEW.redirect_url NOT LIKE 'https://%' OR NEW.redirect_url GLOB '*[^!-~]*' OR length(NEW.redirect_url) > 2048)
BEGIN SELECT RAISE(ABORT, 'redirect_url must be an https URL in ASCII (punycode for international names)'); END;
