module weft/tools/bench/peers/go

go 1.19
