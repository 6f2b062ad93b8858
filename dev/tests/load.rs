//! The harness's load clients against a real server (started in-process on
//! a temporary data directory with the development keys): every request of
//! a whole flow and every prepared signature is answered as expected, and a
//! refused request is counted, not hidden.

use vanthu_dev::load::{flows, signatures, FlowsArgs, LoadArgs, SignaturesArgs};

async fn server(dir: &std::path::Path) -> String {
    let config = vanthu::config::Config {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".into(),
        keys_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../keys-dev").into(),
        log: "warn".into(),
        dev: true,
        demo: Some(true),
        ..Default::default()
    };
    let service = vanthu::app::start(&config)
        .await
        .expect("the server starts");
    let url = format!("http://{}", service.addr);
    tokio::spawn(service.run());
    url
}

fn load(url: &str) -> LoadArgs {
    LoadArgs {
        url: url.to_owned(),
        keys_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../keys-dev").into(),
        connections: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_clients_complete_flows_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let url = server(dir.path()).await;
    let f = flows(&FlowsArgs {
        load: load(&url),
        seconds: 1,
    })
    .await
    .unwrap();
    assert_eq!(f.bad, 0, "{:?}", f.first_error);
    let done = f.flows.unwrap();
    assert!(done >= 1, "no flow completed: {f:?}");
    assert_eq!(f.requests, 14 * done, "14 requests per flow: {f:?}");

    let s = signatures(&SignaturesArgs {
        load: load(&url),
        count: 5,
        wait: false,
    })
    .await
    .unwrap();
    assert_eq!((s.requests, s.bad), (5, 0), "{:?}", s.first_error);

    // A server that refuses: a wrong base path answers 404 to every step,
    // and preparing fails loudly instead of reporting zero work as a result.
    let refused = signatures(&SignaturesArgs {
        load: load(&format!("{url}/nowhere")),
        count: 2,
        wait: false,
    })
    .await;
    assert!(refused.is_err(), "{refused:?}");
}
