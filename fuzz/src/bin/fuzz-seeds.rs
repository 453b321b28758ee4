//! Writes the run-time generated seeds of every target into `<dir>/<target>/` (used by
//! `make fuzz` to start each run from real blocks and answers, not only the minimized
//! committed corpus). Usage: `fuzz-seeds <dir>`.

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: fuzz-seeds <dir>");
        std::process::exit(2);
    };
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
        println!("{:<20} {} generated seeds", t.name, seeds.len());
    }
}
