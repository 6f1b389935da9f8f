//! A valid component of another world: it exports `hello`, not the investor
//! functions, so stockd must refuse it.

wit_bindgen::generate!({
    inline: "
        package test:wrong-world;

        world greeter {
            export hello: func() -> string;
        }
    ",
});

struct Greeter;

impl Guest for Greeter {
    fn hello() -> String {
        "hello".to_string()
    }
}

export!(Greeter);
