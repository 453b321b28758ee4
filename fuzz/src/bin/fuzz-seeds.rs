//! `fuzz-seeds <dir>` writes the run-time generated seeds of every target into
//! `<dir>/<target>/` (so `make fuzz` starts from real blocks and answers, not only the
//! minimized committed corpus). `fuzz-seeds --list` prints each target's name, its
//! `-max_len` and what it drives, one per line.

fn main() {
    let Some(arg) = std::env::args_os().nth(1) else {
        eprintln!("usage: fuzz-seeds <dir> | fuzz-seeds --list");
        std::process::exit(2);
    };
    if arg == "--list" {
        for t in skein_fuzz::TARGETS {
            println!("{} {} {}", t.name, t.max_len, t.what);
        }
        return;
    }
    let dir = std::path::PathBuf::from(arg);
    for t in skein_fuzz::TARGETS {
        let out = dir.join(t.name);
        if let Err(e) = std::fs::create_dir_all(&out) {
            eprintln!("{}: {e}", out.display());
            std::process::exit(1);
        }
        let seeds = skein_fuzz::seeds::generated(t.name);
        for (name, data) in &seeds {
            if let Err(e) = std::fs::write(out.join(name), data) {
                eprintln!("{}: {e}", out.join(name).display());
                std::process::exit(1);
            }
        }
        eprintln!("{:<20} {} generated seeds", t.name, seeds.len());
    }
}
