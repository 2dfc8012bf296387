//! `dishpatch-emulator [PORT]`: starts the emulator `DISHPATCH_EMULATOR` names (ministack when
//! unset) on PORT (0 or none: a free one), prints its URL once it answers, and keeps it
//! running until this process is stopped.

fn main() {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: dishpatch-emulator [PORT] ({e})");
            std::process::exit(2);
        }
    };
    let emulator = match std::env::var("DISHPATCH_EMULATOR") {
        Ok(v) if !v.trim().is_empty() => match dishpatch_emulator::Emulator::parse(&v) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("DISHPATCH_EMULATOR: {e}");
                std::process::exit(2);
            }
        },
        _ => dishpatch_emulator::Emulator::ALL[0],
    };
    println!("{}", dishpatch_emulator::start(emulator, port));
    // The emulators' shells stop them when this process's end of their stdin closes.
    loop {
        std::thread::park();
    }
}
