// Start GOV.UK Frontend's components (the header's menu, error summaries); pages work without it.
import { initAll } from '/assets/govuk/govuk-frontend.min.js'
initAll()
