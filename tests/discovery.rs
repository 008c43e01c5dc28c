//! LAN discovery end to end: real `kumo host` processes answer multicast DNS and `kumo list`
//! finds them, says which this client is paired with, and does not list a host started with
//! `--no-advertise`.
//!
//! Multicast must not leave this machine, so the test runs in a network namespace of its own
//! (`unshare -n`, with a user namespace when not root) whose only interface is a loopback
//! with multicast turned on and a private LAN address, 10.99.0.1/24 (`ip`, from iproute2).
//! The hosts listen on every address, as on a real LAN.

use std::process::Command;

/// How to enter a private network namespace here: `unshare` arguments, or why not.
fn namespace() -> Result<Vec<&'static str>, String> {
    if Command::new("ip").arg("-V").output().is_err() {
        return Err("`ip` (iproute2) is not installed: scripts/install-deps.sh test installs it".into());
    }
    for args in [vec!["-rn"], vec!["-n"]] {
        let ok = Command::new("unshare").args(&args).arg("true").status().is_ok_and(|s| s.success());
        if ok {
            return Ok(args);
        }
    }
    Err("`unshare -n` is not allowed here (no user namespaces, and not root)".into())
}

#[test]
fn kumo_list_finds_advertising_hosts_and_knows_the_paired_one() {
    let unshare = match namespace() {
        Ok(args) => args,
        Err(why) if std::env::var_os("CI").is_some() => panic!("the discovery test cannot run: {why}"),
        Err(why) => {
            eprintln!("skipping the discovery test: {why}");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("kumo-discovery-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    // Three hosts: one offering a PIN, one plain, one that does not advertise. The client
    // lists, pairs with the first, and lists again. Every step is bounded by `timeout`.
    let script = r#"
        set -e
        ip link set lo up
        ip link set lo multicast on
        ip addr add 10.99.0.1/24 dev lo
        ip route add 224.0.0.0/4 dev lo
        export XDG_DATA_HOME="$DIR/data" RUST_LOG=warn
        "$KUMO" host --listen 0.0.0.0:4433 --ephemeral --name "living room" --pair > "$DIR/den.out" & P1=$!
        "$KUMO" host --listen 0.0.0.0:4434 --ephemeral --name "attic" > "$DIR/attic.out" & P2=$!
        "$KUMO" host --listen 0.0.0.0:4435 --ephemeral --name "hidden" --no-advertise > "$DIR/hidden.out" & P3=$!
        trap 'kill $P1 $P2 $P3' EXIT
        for i in $(seq 50); do [ "$(wc -l < "$DIR/den.out")" -ge 4 ] && break; sleep 0.1; done
        PIN=$(sed -n 4p "$DIR/den.out" | cut -d' ' -f3)
        echo "== before"
        timeout 10 "$KUMO" list --wait 1.5
        timeout 10 "$KUMO" pair 10.99.0.1:4433 --pin "$PIN" --name lister > /dev/null
        echo "== after"
        timeout 10 "$KUMO" list --wait 1.5
    "#;
    let out = Command::new("timeout")
        .arg("60")
        .arg("unshare")
        .args(&unshare)
        .args(["sh", "-c", script])
        .env("KUMO", env!("CARGO_BIN_EXE_kumo"))
        .env("DIR", &dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the script failed:\n{stdout}\n{stderr}");
    let (before, after) = stdout.split_once("== after").unwrap();
    let row = |text: &str, name: &str| text.lines().find(|l| l.starts_with(name)).map(str::to_owned);
    let den_fp = std::fs::read_to_string(dir.join("den.out")).unwrap();
    let den_fp = den_fp.lines().nth(1).unwrap().rsplit(' ').next().unwrap().to_owned();

    let den = row(before, "living room").unwrap_or_else(|| panic!("the host was not found:\n{stdout}\n{stderr}"));
    assert!(den.contains("10.99.0.1:4433") && den.contains(" no ") && den.contains(&den_fp), "{den}");
    let attic = row(before, "attic").unwrap_or_else(|| panic!("the second host was not found:\n{stdout}"));
    assert!(attic.contains("10.99.0.1:4434"), "{attic}");
    let hidden = std::fs::read_to_string(dir.join("hidden.out")).unwrap();
    assert!(hidden.contains("listening on 0.0.0.0:4435"), "the unadvertised host did not start: {hidden}");
    assert!(row(&stdout, "hidden").is_none(), "a host with --no-advertise was listed:\n{stdout}");

    let den = row(after, "living room").unwrap();
    assert!(den.contains(" yes "), "the paired host is not shown as paired: {den}");
    assert!(row(after, "attic").unwrap().contains(" no "), "{after}");
    std::fs::remove_dir_all(&dir).ok();
}
