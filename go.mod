module github.com/phonex/phonex

go 1.26.8
