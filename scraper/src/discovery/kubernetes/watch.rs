//! One list+watch of one kind in one namespace (or all), kept as a local copy.

use std::fmt::Debug;
use std::sync::Arc;

use futures_util::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;

use super::{Request, Shared, Store, Stores, key};

/// Follows `api` until aborted, mirroring its objects into the store `pick` selects.
/// `namespace` is the namespace watched (`None`: all), so that a relist replaces only the
/// objects this watch owns.
pub(crate) async fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    namespace: Option<String>,
    shared: Arc<Shared>,
    pick: fn(&mut Stores) -> &mut Store<K>,
) where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = watcher::watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut relisted: Option<Store<K>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relisted = Some(Store::new()),
            Ok(Event::InitApply(mut object)) => {
                object.meta_mut().managed_fields = None;
                relisted
                    .get_or_insert_with(Store::new)
                    .insert(key(object.meta()), object);
            }
            Ok(Event::InitDone) => {
                let fresh = relisted.take().unwrap_or_default();
                {
                    let mut stores = shared.lock();
                    // A list succeeded, and the watch after it starts.
                    stores.count_request::<K>(Request::List, true);
                    stores.count_request::<K>(Request::Watch, true);
                    let store = pick(&mut stores);
                    store.retain(|(ns, _), _| matches!(&namespace, Some(own) if own != ns));
                    store.extend(fresh);
                }
                shared.mark_changed();
            }
            Ok(Event::Apply(mut object)) => {
                // Field ownership bookkeeping is often the largest part of an object.
                object.meta_mut().managed_fields = None;
                pick(&mut shared.lock()).insert(key(object.meta()), object);
                shared.mark_changed();
            }
            Ok(Event::Delete(object)) => {
                pick(&mut shared.lock()).remove(&key(object.meta()));
                shared.mark_changed();
            }
            Err(error) => {
                let request = match error {
                    watcher::Error::InitialListFailed(_) => Request::List,
                    _ => Request::Watch,
                };
                shared.lock().count_request::<K>(request, false);
                tracing::warn!(
                    kind = %K::kind(&()),
                    "kubernetes list/watch failed, retrying with backoff: {error} \
                     (404: the API or CRD is not installed; 403: RBAC does not allow \
                     list and watch)"
                );
            }
        }
    }
}
