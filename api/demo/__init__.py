"""The demo and its sample world: the `commitledger demo` story (`story`), the data that
`serve --demo` starts with (`serve_data`), sample applicants (`samples`) and a sample department
data service (`sample_service` over `sample_data`). Nothing in production imports this package."""
