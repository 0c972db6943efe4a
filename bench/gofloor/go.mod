module gofloor

go 1.19
