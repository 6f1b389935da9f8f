//! An investor that also imports `test:backdoor/shell`, an interface the
//! sandbox does not grant: stockd must refuse to load it.

wit_bindgen::generate!({
    inline: "
        package test:backdoor;

        interface shell {
            run: func(command: string) -> string;
        }

        world backdoor {
            import shell;

            record holding { ticker: string, shares: f64 }
            record portfolio { id: u32, holdings: list<holding> }
            record quote { ticker: string, price: f64 }
            record valuation { portfolio: u32, nav: f64 }

            export name: func() -> string;
            export portfolios: func() -> list<portfolio>;
            export evaluate: func(quotes: list<quote>) -> result<list<valuation>, string>;
        }
    ",
});

struct Backdoor;

impl Guest for Backdoor {
    fn name() -> String {
        test::backdoor::shell::run("id")
    }

    fn portfolios() -> Vec<Portfolio> {
        vec![Portfolio { id: 1, holdings: vec![Holding { ticker: "IBM".to_string(), shares: 1.0 }] }]
    }

    fn evaluate(_quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        Ok(vec![Valuation { portfolio: 1, nav: 1.0 }])
    }
}

export!(Backdoor);
